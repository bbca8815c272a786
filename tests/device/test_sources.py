"""Uplink sources: WAV of any rate/channels, spoken text (flite), end-of-speech marks."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from device.audio.sources import (
    AudioSourceError,
    ScriptedSource,
    Utterance,
    last_voiced,
    synthesize,
    utterance_from_wav,
)


def test_wav_any_rate_and_channels_to_16k(tmp_path: Path) -> None:
    path = tmp_path / "s.wav"
    t = np.arange(44100) / 44100
    tone = (np.sin(2 * np.pi * 300 * t) * 8000).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(np.stack([tone, tone], axis=1).tobytes())
    utt = utterance_from_wav(path, lead_in_ms=200)
    assert abs(len(utt.pcm) - (3200 + 16000)) < 20
    assert abs(utt.speech_end - len(utt.pcm)) < 40


def test_bad_wav_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "x.wav").write_bytes(b"nope")
    with pytest.raises(AudioSourceError, match="cannot read WAV"):
        utterance_from_wav(tmp_path / "x.wav")


async def test_say_uses_a_real_tts_engine() -> None:
    utt = await synthesize("turn on the lamp")
    assert 0.5 < len(utt.pcm) / 16000 < 4
    assert 3200 < utt.speech_end <= len(utt.pcm)
    assert np.abs(utt.pcm[utt.speech_end :]).max(initial=0) < 500


def test_scripted_source_marks_speech_end_and_keeps_preroll() -> None:
    pcm = np.zeros(3000, dtype=np.int16)
    pcm[1000:2000] = 9000
    src = ScriptedSource()
    src.play(Utterance(pcm, last_voiced(pcm)))
    marks = [src.read(960)[1] for _ in range(4)]
    assert marks == [False, False, True, False]  # sample 1999 is in the third frame
    assert not src.busy
    assert len(src.preroll()) == 3840
    for _ in range(40):
        src.read(960)
    assert len(src.preroll()) == 32000
