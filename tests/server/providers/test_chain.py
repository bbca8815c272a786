"""The start-up capability check of the ASR → dialogue → TTS chain."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from server.errors import ConfigError
from server.providers.base import AsrCapabilities, DialogueCapabilities, TtsCapabilities
from server.providers.chain import check_chain


@dataclass
class P:
    name: str
    capabilities: object = field(default=None)


def chain(asr: AsrCapabilities, dialogue: DialogueCapabilities, tts: TtsCapabilities, lang: str):  # type: ignore[no-untyped-def]
    return check_chain(P("asr", asr), P("dlg", dialogue), P("tts", tts), lang)  # type: ignore[arg-type]


def test_grammar_asr_with_the_local_dialogue_agrees() -> None:
    assert (
        chain(
            AsrCapabilities(grammar=True, free_text=False),
            DialogueCapabilities(),
            TtsCapabilities(),
            "en-US",
        )
        == []
    )


def test_free_text_with_nothing_to_answer_it_is_a_warning() -> None:
    (warning,) = chain(
        AsrCapabilities(grammar=False), DialogueCapabilities(), TtsCapabilities(), "en"
    )
    assert "only answers its commands" in warning


def test_an_llm_behind_a_grammar_recogniser_is_a_warning() -> None:
    (warning,) = chain(
        AsrCapabilities(grammar=True, free_text=False),
        DialogueCapabilities(free_text=True),
        TtsCapabilities(),
        "en",
    )
    assert "only recognises the command phrases" in warning


def test_a_language_the_recogniser_lacks_is_an_error_one_the_voice_lacks_a_warning() -> None:
    with pytest.raises(ConfigError, match="does not understand zh"):
        chain(AsrCapabilities(), DialogueCapabilities(), TtsCapabilities(), "zh-CN")
    zh = frozenset({"en", "zh"})
    (warning,) = chain(
        AsrCapabilities(grammar=True, free_text=False, languages=zh),
        DialogueCapabilities(),
        TtsCapabilities(),
        "auto",
    )
    assert "cannot speak zh" in warning and "tts.provider: routing" in warning
