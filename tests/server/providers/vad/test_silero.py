"""Silero VAD (one shared onnxruntime session) on real synthetic speech (flite → Opus round
trip)."""

from __future__ import annotations

import shutil
import threading
import time
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


def test_streams_are_independent_and_share_the_model(
    vad: SileroVad, speech_chunks: list[np.ndarray]
) -> None:
    a, b = vad.create_stream(), vad.create_stream()
    quiet = (np.random.default_rng(1).standard_normal(960) * 300).astype(np.int16)
    got_a = [a.accept(c) for c in speech_chunks]
    got_b = [b.accept(quiet) for _ in speech_chunks]  # noise, loud enough to run the model
    assert any(any(d) for d in got_a)
    assert not any(any(d) for d in got_b)
    assert b.windows_run == len(speech_chunks) * 960 // 512 - 1  # block 0 has no window yet
    a.close()
    a.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        a.accept(quiet)
    started = time.perf_counter()
    streams = [vad.create_stream() for _ in range(100)]
    assert time.perf_counter() - started < 1.0  # no model per stream (sherpa's took ~100 ms)
    b.reset()  # a reset stream decides like a new one
    assert [b.accept(c) for c in speech_chunks] == [streams[0].accept(c) for c in speech_chunks]


def test_digital_silence_is_gated_without_running_the_model(
    vad: SileroVad, speech_chunks: list[np.ndarray]
) -> None:
    """Windows below vad.silence_gate_dbfs (default -60) skip the model; speech still counts."""
    gated, ungated = vad.create_stream(), SileroVad(VadSettings(silence_gate_dbfs=None))
    plain = ungated.create_stream()
    silence = np.zeros(960, dtype=np.int16)
    clip = [silence] * 10 + speech_chunks + [silence] * 10
    a = [d for c in clip for d in gated.accept(c)]
    b = [d for c in clip for d in plain.accept(c)]
    assert gated.windows_run < plain.windows_run == len(a) - 1
    assert sum(a) * 32 > 800  # the sentence is still over a second of speech
    changed = sum(x != y for x, y in zip(a, b, strict=True))
    assert changed <= 2, f"the gate changed {changed} decisions"


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


def test_windows_of_concurrent_streams_run_as_one_batch_with_the_same_decisions(
    speech_chunks: list[np.ndarray],
) -> None:
    """Sessions on several executor threads share model calls, each keeping its own state."""
    vad = SileroVad(VadSettings(silence_gate_dbfs=None))
    alone = vad.create_stream()
    expected = [d for c in speech_chunks for d in alone.accept(c)]
    session = vad.batches._session
    sizes: list[int] = []

    class SlowFirstCall:  # the first batch is slow, so the other threads' windows queue behind it
        def run(self, names: None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            sizes.append(len(feeds["input"]))
            if len(sizes) == 1:
                time.sleep(0.2)
            result: list[np.ndarray] = session.run(names, feeds)
            return result

    vad.batches._session = SlowFirstCall()
    streams = [vad.create_stream() for _ in range(6)]
    got: dict[int, list[bool]] = {}

    def talk(i: int) -> None:
        got[i] = [d for c in speech_chunks for d in streams[i].accept(c)]

    threads = [threading.Thread(target=talk, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(got[i] == expected for i in range(6))
    assert max(sizes) >= 2  # windows of different streams went into one call
    assert sum(sizes) == 6 * (len(expected) - 1) and len(sizes) < 6 * (len(expected) - 1)


def test_a_model_error_reaches_every_waiting_stream(speech_chunks: list[np.ndarray]) -> None:
    vad = SileroVad(VadSettings(silence_gate_dbfs=None))

    class Broken:
        def run(self, names: None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            raise RuntimeError("onnxruntime failed")

    vad.batches._session = Broken()
    with pytest.raises(RuntimeError, match="onnxruntime failed"):
        vad.create_stream().accept(np.concatenate(speech_chunks[:2]))


def test_accept_many_gives_each_stream_the_decisions_it_has_alone(
    speech_chunks: list[np.ndarray],
) -> None:
    """Streams fed together (the speech-in batcher) share one model call per window position
    and decide exactly as when fed alone, silence-gated windows included."""
    vad = SileroVad(VadSettings())
    quiet = [np.zeros_like(c) for c in speech_chunks]
    late = quiet[:5] + speech_chunks[: len(speech_chunks) - 5]
    feeds = [speech_chunks, quiet, late]
    expected = []
    for chunks in feeds:
        alone = vad.create_stream()
        expected.append([d for c in chunks for d in alone.accept(c)])
    session = vad.batches._session
    sizes: list[int] = []

    class Counting:
        def run(self, names: None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            sizes.append(len(feeds["input"]))
            result: list[np.ndarray] = session.run(names, feeds)
            return result

    vad.batches._session = Counting()
    streams = [vad.create_stream() for _ in feeds]
    got: list[list[bool]] = [[] for _ in feeds]
    for position in range(len(speech_chunks)):
        items = [(stream, chunks[position]) for stream, chunks in zip(streams, feeds, strict=True)]
        for i, decisions in enumerate(vad.accept_many(items)):
            got[i] += decisions
    assert got == expected
    assert any(expected[0]) and not any(expected[1])
    assert max(sizes) == 2  # the two talking streams' windows went into the same calls
    with pytest.raises(ValueError, match="twice"):
        vad.accept_many([(streams[0], speech_chunks[0]), (streams[0], speech_chunks[1])])
