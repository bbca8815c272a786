"""Silero VAD over sherpa-onnx on real synthetic speech (flite → Opus round trip)."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path

import numpy as np
import pytest

from device.audio.sources import say
from server.config import VadSettings
from server.pipeline.endpointer import Endpointer, SpeechEnded, SpeechStarted
from server.providers import registry
from server.providers.base import ProviderUnavailable
from server.providers.vad.silero import SileroVad
from tests.server.providers.asr.speech import opus_round_trip


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    provider = registry.VAD.create("silero", VadSettings())
    assert isinstance(provider, SileroVad)
    return provider


@pytest.fixture(scope="module")
def speech_chunks() -> list[np.ndarray]:
    pcm = say("turn on the kitchen lamp")
    return opus_round_trip(pcm, lead_ms=600, tail_ms=1200)


def test_decisions_follow_the_speech(vad: SileroVad, speech_chunks: list[np.ndarray]) -> None:
    stream = vad.create_stream()
    assert stream.window_ms == 32.0
    decisions: list[bool] = []
    for chunk in speech_chunks:  # 960 samples: not a multiple of the 512-sample window
        decisions += stream.accept(chunk)
    total_ms = len(speech_chunks) * 60
    assert len(decisions) == total_ms * 16 // 512
    lead = int(500 / 32)
    assert not any(decisions[:lead]), "speech detected in leading silence"
    assert sum(decisions) * 32 > 800, "the sentence is over a second of speech"
    assert not any(decisions[-int(700 / 32) :]), "speech detected in trailing silence"
    stream.close()


def test_endpointer_on_vad_gives_one_utterance(
    vad: SileroVad, speech_chunks: list[np.ndarray]
) -> None:
    stream = vad.create_stream()
    ep = Endpointer.from_settings(VadSettings())
    events = []
    n = 0
    for chunk in speech_chunks:
        for is_speech in stream.accept(chunk):
            n += 1
            events += ep.process(is_speech, n * stream.window_ms)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    started, ended = events
    assert isinstance(started, SpeechStarted) and isinstance(ended, SpeechEnded)
    assert 800 <= started.at_ms <= 1200  # 600 ms lead-in + flite's own 300 ms
    assert ended.reason == "silence"
    stream.close()


def test_streams_are_independent_and_detectors_reused(
    vad: SileroVad, speech_chunks: list[np.ndarray]
) -> None:
    a, b = vad.create_stream(), vad.create_stream()
    silence = np.zeros(960, dtype=np.int16)
    got_a = [a.accept(c) for c in speech_chunks]
    got_b = [b.accept(silence) for _ in speech_chunks]
    assert any(any(d) for d in got_a)
    assert not any(any(d) for d in got_b)
    idle = vad.idle_detectors
    a.close()
    a.close()  # twice is fine
    assert vad.idle_detectors == idle + 1
    with pytest.raises(RuntimeError, match="closed"):
        a.accept(silence)
    del b
    gc.collect()
    assert vad.idle_detectors == idle + 2  # a forgotten stream gives its detector back too
    c = vad.create_stream()
    assert vad.idle_detectors == idle + 1
    assert not any(c.accept(silence))  # a recycled detector starts clean
    c.reset()
    c.close()


def test_empty_and_odd_sized_input(vad: SileroVad) -> None:
    stream = vad.create_stream()
    assert stream.accept(np.zeros(0, dtype=np.int16)) == []
    assert stream.accept(np.zeros(511, dtype=np.int16)) == []
    assert len(stream.accept(np.zeros(1, dtype=np.int16))) == 1
    stream.close()


def test_missing_model_says_run_make_setup(tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailable, match="make setup"):
        SileroVad(VadSettings(model_path=tmp_path / "nope.onnx"))


def test_wrong_model_file_is_refused_before_loading(tmp_path: Path) -> None:
    good = VadSettings().model_path
    wrong_size = tmp_path / "small.onnx"
    wrong_size.write_bytes(b"\x08\x07" * 100)
    with pytest.raises(ProviderUnavailable, match=r"size.*make setup"):
        SileroVad(VadSettings(model_path=wrong_size))
    same_size = tmp_path / "corrupt.onnx"
    shutil.copy(good, same_size)
    data = bytearray(same_size.read_bytes())
    data[1000] ^= 0xFF
    same_size.write_bytes(bytes(data))
    with pytest.raises(ProviderUnavailable, match=r"sha256.*make setup"):
        SileroVad(VadSettings(model_path=same_size))
