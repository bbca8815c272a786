"""Drives one conversational turn like a board: ``listen start``, paced speech and silence
(manual mode: ``listen stop``), then waits for the reply; optionally interrupts it (``abort``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from conformance.server.link import DeviceLink
from conformance.server.records import SessionRecord, Turn

FRAME_S = 0.060


@dataclass(frozen=True)
class TurnTimings:
    """How long to wait (s) and how much silence to send after speech."""

    answer_timeout_s: float = 20.0
    reply_timeout_s: float = 30.0
    tail_silence_s: float = 1.0
    settle_s: float = 0.3


def reply_open(rec: SessionRecord) -> bool:
    """True while the last tts start of the session has not been followed by a tts stop."""
    state = None
    for e in rec.received("text"):
        obj = e.obj
        if obj and obj.get("type") == "tts" and obj.get("state") in ("start", "stop"):
            state = obj["state"]
    return state == "start"


async def run_turn(
    link: DeviceLink,
    timings: TurnTimings,
    label: str,
    mode: str,
    speech: Sequence[bytes],
    silence: Sequence[bytes],
    *,
    residual: int = 0,
    abort: bool = False,
) -> Turn:
    """One turn: listen start, paced speech + silence (manual: listen stop), await the reply."""
    rec = link.record
    n0 = len(rec.events)
    turn = Turn(label=label, mode=mode, t_listen_start=time.monotonic())
    rec.turns.append(turn)

    def first(kind: str, state: str | None = None, after: float = 0.0) -> float | None:
        for e in rec.events[n0:]:
            if e.direction != "in" or e.t < after:
                continue
            if kind == "binary" and e.kind == "binary":
                return e.t
            obj = e.obj if e.kind == "text" else None
            if obj and obj.get("type") == kind and (state is None or obj.get("state") == state):
                return e.t
        return None

    def started() -> bool:
        return first("tts", "start") is not None

    await link.send_text(link.msg(type="listen", state="start", mode=mode))
    loop = asyncio.get_running_loop()
    tail = int(timings.tail_silence_s / FRAME_S)
    answer_frames = int(timings.answer_timeout_s / FRAME_S)  # auto: silence while awaiting it
    stream = list(speech) + list(silence[: tail if mode == "manual" else answer_frames])
    t0 = loop.time()
    for i, packet in enumerate(stream):
        if started() or link.closed:
            break
        await asyncio.sleep(max(0.0, t0 + i * FRAME_S - loop.time()))
        if not await link.send_audio(packet):
            break
        if i == len(speech) - 1:
            turn.t_speech_end = time.monotonic()
        if i >= len(speech) and len(packet) <= 2:
            turn.dtx_frames += 1
    if mode == "manual" and not link.closed:
        await link.send_text(link.msg(type="listen", state="stop"))
        turn.t_listen_stop = time.monotonic()
    waited = time.monotonic() - (turn.t_listen_stop or turn.t_speech_end or time.monotonic())
    await link.wait_until(started, max(0.0, timings.answer_timeout_s - waited))
    turn.t_tts_start = first("tts", "start")
    if turn.t_tts_start is None:
        said = [e for e in rec.events[n0:] if e.direction == "in" and e.text and e.type != "mcp"]
        seen = [e.text[:80] for e in said if e.text][:3]
        closed = f"; socket closed by {rec.closed_by}" if link.closed else ""
        turn.note = (
            f"no tts start within {timings.answer_timeout_s:g} s (server said {seen}{closed})"
        )
        return turn
    for packet in silence[:residual]:
        if await link.send_audio(packet):
            turn.residual_frames += 1
    if abort:
        await link.wait_until(
            lambda: (
                first("binary", after=turn.t_tts_start or 0.0) is not None
                or first("tts", "stop") is not None
            ),
            timings.reply_timeout_s,
        )
        if first("tts", "stop") is None and not link.closed:
            await link.send_text(link.msg(type="abort"))
            turn.t_abort = time.monotonic()
    await link.wait_until(lambda: first("tts", "stop") is not None, timings.reply_timeout_s)
    turn.t_first_audio = first("binary", after=turn.t_tts_start)
    turn.t_tts_stop = first("tts", "stop", after=turn.t_tts_start)
    await link.wait_until(lambda: link.closed, timings.settle_s)
    return turn
