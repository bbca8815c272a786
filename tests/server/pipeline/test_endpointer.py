"""Endpointer: examples plus hypothesis properties over arbitrary decision sequences."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.config import VadSettings
from server.pipeline.endpointer import Endpointer, SpeechEnded, SpeechStarted

WIN = 32.0


def run(ep: Endpointer, pattern: str, start: float = 0.0) -> list[tuple[float, object]]:
    """Feed 'S'/'.' windows of 32 ms; returns (now, event) pairs."""
    out = []
    for i, ch in enumerate(pattern):
        now = start + i * WIN
        out += [(now, e) for e in ep.process(ch == "S", now)]
    return out


def test_defaults_come_from_vad_settings() -> None:
    ep = Endpointer()
    s = VadSettings()
    assert ep.endpoint_silence_ms == s.endpoint_silence_ms == 400
    assert ep.min_speech_ms == s.min_speech_ms
    assert ep.max_utterance_ms == s.max_utterance_s * 1000
    ep2 = Endpointer.from_settings(VadSettings(endpoint_silence_ms=800))
    assert ep2.endpoint_silence_ms == 800


def test_simple_utterance() -> None:
    ep = Endpointer(endpoint_silence_ms=400, min_speech_ms=100, max_utterance_ms=10_000)
    events = run(ep, "..SSSSSS" + "." * 20)
    assert events[0] == (6 * WIN, SpeechStarted(2 * WIN))  # 192 - 64 = 128 ms >= 100 ms
    last_speech = 7 * WIN
    assert events[1][1] == SpeechEnded(last_speech + 400, "silence")
    assert events[1][0] == 20 * WIN  # first window at or after 624 ms is 640 ms
    assert len(events) == 2
    assert not ep.speaking


def test_blip_shorter_than_min_speech_is_ignored() -> None:
    ep = Endpointer(endpoint_silence_ms=400, min_speech_ms=150, max_utterance_ms=10_000)
    assert run(ep, "..SSS..SS.S....SSSS.") == []  # 3 windows span 64 ms < 150


def test_max_length_ends_and_speech_restarts() -> None:
    ep = Endpointer(endpoint_silence_ms=400, min_speech_ms=0, max_utterance_ms=320)
    events = [e for _, e in run(ep, "S" * 15)]
    assert events[:2] == [SpeechStarted(0.0), SpeechEnded(320.0, "max_length")]
    assert events[2] == SpeechStarted(320.0)


def test_reset_forgets_speech_and_time_must_not_go_backwards() -> None:
    ep = Endpointer(endpoint_silence_ms=400, min_speech_ms=0, max_utterance_ms=10_000)
    assert ep.process(True, 100.0) == [SpeechStarted(100.0)]
    with pytest.raises(ValueError, match="backwards"):
        ep.process(True, 50.0)
    ep.reset()
    assert not ep.speaking
    assert ep.process(True, 0.0) == [SpeechStarted(0.0)]  # reset also forgot the clock
    assert ep.process(False, 300.0) == []


@pytest.mark.parametrize("kwargs", [{"endpoint_silence_ms": 0}, {"min_speech_ms": -1}])
def test_bad_parameters_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Endpointer(**kwargs)


steps = st.lists(
    st.tuples(st.booleans(), st.sampled_from([10.0, 20.0, 32.0, 60.0, 250.0, 900.0])),
    max_size=300,
)


@settings(max_examples=400, deadline=None)
@given(
    steps=steps,
    silence=st.sampled_from([100.0, 400.0, 800.0]),
    min_speech=st.sampled_from([0.0, 32.0, 150.0]),
    max_utt=st.sampled_from([200.0, 1000.0, 15_000.0]),
)
def test_properties(
    steps: list[tuple[bool, float]], silence: float, min_speech: float, max_utt: float
) -> None:
    ep = Endpointer(silence, min_speech, max_utt)
    now = 0.0
    frames: list[tuple[float, bool]] = []
    log: list[tuple[int, object]] = []  # (index of the frame that emitted, event)
    for speech, dt in steps:
        now += dt  # strictly increasing, as windows of a real stream are
        frames.append((now, speech))
        for e in ep.process(speech, now):
            log.append((len(frames) - 1, e))
    started: SpeechStarted | None = None
    for idx, e in log:
        t_emit = frames[idx][0]
        if isinstance(e, SpeechStarted):
            assert started is None, "two starts without an end"
            started = e
            # every window from the start to the emission is speech, and long enough
            run_frames = [f for f in frames[: idx + 1] if f[0] >= e.at_ms]
            assert run_frames and all(s for _, s in run_frames)
            assert t_emit - e.at_ms >= min_speech
            # emitted promptly: the window before the emitting one was not yet long enough
            if idx > 0 and frames[idx - 1][0] >= e.at_ms and frames[idx - 1][1]:
                assert frames[idx - 1][0] - e.at_ms < min_speech
            # the run really begins at at_ms: the window before was silence or absent, or
            # the at_ms window itself ended the previous utterance by max length
            first = frames.index((e.at_ms, True))
            ended_here = any(
                i == first and isinstance(x, SpeechEnded) and x.reason == "max_length"
                for i, x in log
            )
            assert first == 0 or not frames[first - 1][1] or ended_here
        else:
            assert isinstance(e, SpeechEnded)
            assert started is not None, "end without a start"
            assert t_emit >= e.at_ms
            assert e.at_ms - started.at_ms <= max_utt
            if e.reason == "silence":
                speech_times = [t for t, s in frames[:idx] if s and t >= started.at_ms]
                assert e.at_ms == max(speech_times) + silence
                assert not frames[idx][1]
                # no speech between the last speech and the emission
                assert all(not s for t, s in frames[:idx] if t > max(speech_times))
            else:
                assert e.at_ms == started.at_ms + max_utt
            started = None
    assert ep.speaking == (started is not None)


@settings(max_examples=200, deadline=None)
@given(n_speech=st.integers(1, 40), min_speech=st.sampled_from([64.0, 150.0, 300.0]))
def test_runs_shorter_than_min_speech_never_start(n_speech: int, min_speech: float) -> None:
    ep = Endpointer(400, min_speech, 15_000)
    events = run(ep, ("S" * n_speech + "....") * 3)
    span = (n_speech - 1) * WIN
    assert bool(events) == (span >= min_speech)


def test_complete_command_needs_only_the_short_silence() -> None:
    ep = Endpointer(400, 0, 10_000, complete_silence_ms=200)
    feed = [(i * WIN, i < 5) for i in range(30)]  # speech until 128 ms, then silence
    ended = [(now, e) for now, s in feed for e in ep.process(s, now, complete=True)]
    assert ended[-1][1] == SpeechEnded(4 * WIN + 200, "silence")
    ep.reset()
    ended = [(now, e) for now, s in feed for e in ep.process(s, now, complete=False)]
    assert ended[-1][1] == SpeechEnded(4 * WIN + 400, "silence")


def test_complete_silence_defaults_to_the_full_one_and_never_exceeds_it() -> None:
    assert Endpointer(400, 0, 10_000).complete_silence_ms == 400
    assert Endpointer(300, 0, 10_000, complete_silence_ms=900).complete_silence_ms == 300
    assert Endpointer.from_settings(VadSettings()).complete_silence_ms == 200
    with pytest.raises(ValueError, match="complete_silence_ms"):
        Endpointer(400, 0, 10_000, complete_silence_ms=0)


def test_a_leaf_command_ends_once_the_voice_has_been_quiet_for_the_leaf_silence() -> None:
    ep = Endpointer(400, 0, 10_000, complete_silence_ms=200, leaf_silence_ms=120)
    # the voice stops at 100 ms; the VAD's speech tail runs to 256 ms (8 windows)
    feed = [(i * WIN, i < 9) for i in range(30)]
    ended = [
        (now, e)
        for now, s in feed
        for e in ep.process(s, now, complete=True, leaf=True, voiced_until_ms=100.0)
        if isinstance(e, SpeechEnded)
    ]
    assert ended == [(9 * WIN, SpeechEnded(9 * WIN, "silence"))]  # the first silent window
    ep.reset()
    not_leaf = [
        e
        for now, s in feed
        for e in ep.process(s, now, complete=True, voiced_until_ms=100.0)
        if isinstance(e, SpeechEnded)
    ]
    assert not_leaf == [SpeechEnded(8 * WIN + 200, "silence")]


def test_a_leaf_still_waits_while_the_audio_is_voiced() -> None:
    ep = Endpointer(400, 0, 10_000, complete_silence_ms=200, leaf_silence_ms=120)
    for i in range(5):
        ep.process(True, i * WIN, complete=True, leaf=True, voiced_until_ms=i * WIN)
    # a non-speech window 30 ms after the last voiced sample: too soon for the leaf rule
    assert ep.process(False, 5 * WIN, complete=True, leaf=True, voiced_until_ms=5 * WIN - 30) == []
    off = Endpointer(400, 0, 10_000, complete_silence_ms=200, leaf_silence_ms=0)
    off.process(True, 0.0)
    assert off.process(False, 150.0, complete=True, leaf=True, voiced_until_ms=0.0) == []
