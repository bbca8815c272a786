"""flite and espeak-ng through the real binaries."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from protocol.audio import rms_dbfs
from server.config import TtsSettings
from server.providers.base import ProviderError, ProviderUnavailable
from server.providers.registry import TTS
from server.providers.tts import process
from server.providers.tts.espeak import CHINESE_VOICE, EspeakTts
from server.providers.tts.flite import FliteTts

SENTENCE = "The kitchen lamp is on, and the volume is set to thirty."


def _seconds(audio) -> float:  # type: ignore[no-untyped-def]
    return len(audio.pcm) / audio.sample_rate_hz


@pytest.mark.parametrize(("name", "rate"), [("flite", 16000), ("espeak", 22050)])
async def test_sentence_is_audible_speech_at_native_rate(name: str, rate: int) -> None:
    tts = TTS.create(name, TtsSettings())
    audio = await tts.synthesize(SENTENCE)
    assert audio.sample_rate_hz == rate
    assert audio.pcm.dtype == np.int16
    # ~11 words: somewhere between 1.5 and 8 seconds of speech
    assert 1.5 < _seconds(audio) < 8.0
    assert rms_dbfs(audio.pcm) > -40


async def test_speed_shortens_speech() -> None:
    slow = await FliteTts(TtsSettings(speed=1.0)).synthesize(SENTENCE)
    fast = await FliteTts(TtsSettings(speed=2.0)).synthesize(SENTENCE)
    assert _seconds(fast) < 0.7 * _seconds(slow)


async def test_espeak_uses_pinyin_voice_for_chinese() -> None:
    tts = EspeakTts(TtsSettings(voice="en-us"))
    assert tts.voice_for("你好，世界") == CHINESE_VOICE
    assert tts.voice_for("hello", language="zh-CN") == CHINESE_VOICE
    assert tts.voice_for("hello") == "en-us"
    audio = await tts.synthesize("你好，今天天气很好。")
    assert audio.sample_rate_hz == 22050
    assert 0.8 < _seconds(audio) < 6.0
    assert rms_dbfs(audio.pcm) > -40


@pytest.mark.parametrize("name", ["flite", "espeak"])
async def test_text_that_looks_like_options_is_spoken_not_parsed(name: str) -> None:
    tts = TTS.create(name, TtsSettings())
    audio = await tts.synthesize("--help -o /tmp/x; rm -rf $HOME `id`")
    assert _seconds(audio) > 0.5


@pytest.mark.parametrize("name", ["flite", "espeak"])
async def test_empty_text_is_a_clear_error(name: str) -> None:
    tts = TTS.create(name, TtsSettings())
    with pytest.raises(ProviderError, match="empty"):
        await tts.synthesize("  \n ")


async def test_concurrent_requests_all_complete() -> None:
    tts = EspeakTts()
    results = await asyncio.gather(*(tts.synthesize(f"Sentence number {i}.") for i in range(6)))
    assert all(_seconds(a) > 0.5 for a in results)


def test_missing_binary_names_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process.shutil, "which", lambda _name: None)
    with pytest.raises(ProviderUnavailable, match="apt-get install flite"):
        FliteTts()
    with pytest.raises(ProviderUnavailable, match="apt-get install espeak-ng"):
        EspeakTts()


async def test_engine_timeout_is_a_retryable_error() -> None:
    tts = EspeakTts()
    tts._timeout_s = 0.001  # any real process takes longer than a millisecond to start and run
    with pytest.raises(ProviderError) as info:
        await tts.synthesize(SENTENCE * 5)
    assert info.value.code == "tts-timeout"
    assert info.value.retryable
