"""Warm-up at start: a voice that loads a model here says one sentence per language; a network
voice is never called (each start would cost a request); a broken voice does not stop start."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from server.app import languages_to_warm, warm_up
from server.providers.base import SpeechAudio, TtsCapabilities


@dataclass
class Voice:
    capabilities: TtsCapabilities
    fail: bool = False
    said: list[tuple[str, str | None]] = field(default_factory=list)
    name: str = "voice"

    async def synthesize(self, text: str, language: str | None = None) -> SpeechAudio:
        self.said.append((text, language))
        if self.fail:
            raise RuntimeError("model file is corrupt")
        return SpeechAudio(pcm=np.zeros(160, np.int16), sample_rate_hz=16000)


async def test_a_local_voice_is_warmed_in_each_of_its_languages() -> None:
    voice = Voice(TtsCapabilities(languages=frozenset({"en", "zh"}), loads_model=True))
    await warm_up(voice, languages_to_warm(voice))  # type: ignore[arg-type]
    assert voice.said == [("Ready.", "en"), ("好的。", "zh")]


async def test_a_network_voice_is_not_called_at_start() -> None:
    voice = Voice(TtsCapabilities(languages=frozenset({"en", "zh"}), streaming=True))
    assert languages_to_warm(voice) == frozenset()  # type: ignore[arg-type]
    await warm_up(voice, languages_to_warm(voice))  # type: ignore[arg-type]
    assert voice.said == []


async def test_a_broken_voice_is_logged_and_start_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    voice = Voice(TtsCapabilities(languages=frozenset({"en"}), loads_model=True), fail=True)
    await warm_up(voice, languages_to_warm(voice))  # type: ignore[arg-type]
    assert voice.said == [("Ready.", "en")]
    assert "model file is corrupt" in caplog.text
