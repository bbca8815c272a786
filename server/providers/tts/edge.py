"""edge-tts (Microsoft online voices, optional extra ``[edge]``) with a local fallback.

Offline, edge-tts fails within milliseconds (``aiohttp.ClientConnectorDNSError``, an ``OSError``);
then — and when the extra is not installed — the local engine named by ``settings.fallback``
speaks instead, and the switch is logged once per provider instance.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np

from server.config import TtsSettings
from server.providers.base import (
    ProviderError,
    ProviderUnavailable,
    SpeechAudio,
    TtsCapabilities,
    TtsProvider,
)
from server.providers.tts.espeak import has_cjk
from server.providers.tts.process import check_text

log = logging.getLogger(__name__)

DEFAULT_VOICE = "en-US-AriaNeural"
CHINESE_VOICE = "zh-CN-XiaoxiaoNeural"
INSTALL_HINT = "pip install 'xiaozhi-py[edge]'"


def decode_mp3(data: bytes) -> tuple[np.ndarray, int]:
    """MP3 bytes → (mono int16 samples, rate in Hz) with miniaudio. Blocking: run in a thread."""
    import miniaudio  # type: ignore[import-untyped]

    try:
        decoded = miniaudio.decode(data, output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1)
    except miniaudio.DecodeError as exc:
        raise ProviderError(f"cannot decode edge-tts audio: {exc}", code="tts-bad-output") from exc
    pcm = np.frombuffer(decoded.samples, dtype=np.int16).copy()
    return pcm, int(decoded.sample_rate)


class EdgeTts:
    """Online neural voices; falls back to a local engine when offline or not installed."""

    name = "edge"
    capabilities = TtsCapabilities(languages=frozenset({"en", "zh"}), sample_rate_hz=24000)

    def __init__(self, settings: TtsSettings | None = None, *, timeout_s: float = 15.0) -> None:
        self.settings = settings or TtsSettings()
        self.voice = self.settings.voice or DEFAULT_VOICE
        self._timeout_s = timeout_s
        self._fallback: TtsProvider | None = None
        self._fallback_logged = False
        self._limit = asyncio.Semaphore(4)

    @property
    def fallback_name(self) -> str:
        name = self.settings.fallback
        return "flite" if name in ("edge", "") else name

    def _get_fallback(self) -> TtsProvider:
        if self._fallback is None:
            from server.providers.registry import TTS

            self._fallback = TTS.create(self.fallback_name, self.settings)
        return self._fallback

    def _log_fallback(self, reason: str) -> None:
        if not self._fallback_logged:
            self._fallback_logged = True
            log.warning("edge-tts unavailable (%s); speaking with %s", reason, self.fallback_name)

    async def synthesize(self, text: str, *, language: str | None = None) -> SpeechAudio:
        clean = check_text(text)
        try:
            import edge_tts  # noqa: F401
            import miniaudio  # noqa: F401
        except ImportError as exc:
            self._log_fallback(f"{exc.name} not installed; {INSTALL_HINT}")
            return await self._get_fallback().synthesize(clean, language=language)
        try:
            async with self._limit:
                mp3 = await asyncio.wait_for(self._fetch(clean, language), self._timeout_s)
        except (OSError, TimeoutError) as exc:
            self._log_fallback(f"{type(exc).__name__}: {exc}")
            return await self._get_fallback().synthesize(clean, language=language)
        except ProviderError:
            raise
        except Exception as exc:  # edge-tts raises its own exception types for service errors
            self._log_fallback(f"{type(exc).__name__}: {exc}")
            return await self._get_fallback().synthesize(clean, language=language)
        pcm, rate = await asyncio.to_thread(decode_mp3, mp3)
        if pcm.size == 0:
            raise ProviderError("edge-tts returned no audio", code="tts-bad-output")
        return SpeechAudio(pcm=pcm, sample_rate_hz=rate)

    async def _fetch(self, text: str, language: str | None) -> bytes:
        import edge_tts

        voice = self.voice
        if has_cjk(text) and self.settings.voice is None:
            voice = CHINESE_VOICE
        rate = f"{round((self.settings.speed - 1.0) * 100):+d}%"
        communicate: Any = edge_tts.Communicate(text, voice, rate=rate)
        chunks: list[bytes] = []
        async for chunk in communicate.stream():
            if chunk.get("type") == "audio" and chunk.get("data"):
                chunks.append(chunk["data"])
        if not chunks:
            raise ProviderUnavailable("edge-tts returned no audio")
        return b"".join(chunks)
