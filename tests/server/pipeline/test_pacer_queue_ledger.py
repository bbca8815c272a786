"""Pacer (no drift, bounded lead), uplink queue (drop-oldest, controls kept) and ledger."""

from __future__ import annotations

import asyncio

import pytest

from protocol.enums import ListenMode
from server.metrics import ServerMetrics
from server.pipeline.pacer import Pacer
from server.pipeline.speech_in_queue import Begin, Finish, Frame, SpeechInQueue
from server.session.ledger import TurnLedger


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pacer_bursts_then_schedules_from_one_origin() -> None:
    clock = Clock()
    pacer = Pacer(0.06, 3, clock=clock)
    due = []
    for _ in range(8):
        due.append(round(pacer.due() - 100.0, 6))
        pacer.sent()
        clock.now = max(clock.now, pacer.due()) + 0.004  # sleep overshoots by 4 ms every time
    assert due[:4] == [0.0, 0.0, 0.0, 0.0]
    assert due[4:] == [0.06, 0.12, 0.18, 0.24]  # overshoot does not accumulate


def test_pacer_rebases_after_an_underrun_instead_of_flooding() -> None:
    clock = Clock()
    pacer = Pacer(0.06, 1, clock=clock)
    for _ in range(3):
        clock.now = pacer.due()
        pacer.sent()
    clock.now += 1.0  # synthesis stalled for a second
    assert pacer.due() == clock.now and pacer.rebased == 1
    pacer.sent()
    assert pacer.due() == clock.now  # one burst frame
    pacer.sent()
    assert pacer.due() == pytest.approx(clock.now + 0.06)


async def test_uplink_queue_drops_oldest_frames_but_never_controls() -> None:
    queue = SpeechInQueue(2)
    queue.put_control(Begin(1, ListenMode.AUTO))
    assert queue.put_frame(Frame(1, b"a", 0.0))
    assert queue.put_frame(Frame(1, b"b", 0.0))
    assert not queue.put_frame(Frame(1, b"c", 0.0))
    queue.put_control(Finish(1))
    items = [await queue.get() for _ in range(4)]
    assert isinstance(items[0], Begin) and isinstance(items[3], Finish)
    assert [i.payload for i in items[1:3]] == [b"b", b"c"]
    assert queue.dropped == 1
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_frame(Frame(2, b"d", 0.0))
    assert (await asyncio.wait_for(getter, 1)).payload == b"d"


async def test_queued_frames_are_taken_together_up_to_a_control_or_new_epoch() -> None:
    """A busy session catches up by taking the frames queued behind the one it got."""
    queue = SpeechInQueue(10)
    for payload in (b"a", b"b", b"c"):
        queue.put_frame(Frame(1, payload, 0.0))
    queue.put_control(Finish(1))
    queue.put_frame(Frame(2, b"d", 0.0))
    first = await queue.get()
    assert isinstance(first, Frame)
    assert [f.payload for f in queue.take_frames(1, limit=1)] == [b"b"]
    assert [f.payload for f in queue.take_frames(1, limit=8)] == [b"c"]  # not past Finish
    assert queue.take_frames(1, limit=8) == []
    assert isinstance(await queue.get(), Finish)
    assert queue.take_frames(1, limit=8) == []  # frame d is of another utterance
    assert len(queue) == 1 and queue.put_frame(Frame(2, b"e", 0.0))


def test_ledger_durations_and_metrics() -> None:
    ledger = TurnLedger(3)
    for stage, t in [
        ("speech_end", 10.0),
        ("speech_end_detected", 10.45),
        ("asr_final", 10.46),
        ("dialogue_first_token", 10.5),
        ("first_sentence_synthesised", 10.6),
        ("first_frame_sent", 10.61),
        ("last_frame_sent", 12.0),
    ]:
        ledger.mark(stage, t)
    ledger.mark("speech_end", 99.0)  # first mark wins
    d = ledger.durations()
    assert d["endpoint"] == pytest.approx(0.46) and d["first_audio"] == pytest.approx(0.61)
    assert d["vad_hangover"] == pytest.approx(0.45) and d["asr_finalise"] == pytest.approx(0.01)
    assert "turn 3: " in ledger.summary() and "first_audio=610ms" in ledger.summary()
    metrics = ServerMetrics()
    ledger.observe(metrics)
    text = metrics.render().decode()
    assert 'xiaozhi_stage_latency_seconds_count{stage="first_audio"} 1.0' in text
