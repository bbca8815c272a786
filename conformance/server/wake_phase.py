"""The wake-word phase: a board's wake-word start (pre-roll burst, ``listen detect``, ``listen
start`` auto) on an open link; a greeting, if the server speaks one, is interrupted with
``abort`` after its first audio frame, and the times land in ``record.greeting`` (item 20)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from conformance.server.link import DeviceLink
from conformance.server.records import Greeting

WAKE_WORD = "你好小智"


async def run_wake_phase(
    link: DeviceLink, preroll: Sequence[bytes], greeting_wait_s: float, reply_timeout_s: float
) -> None:
    """Wake, wait ``greeting_wait_s`` for a greeting, abort it, wait for its tts stop, hang up."""
    rec = link.record
    for packet in preroll:
        await link.send_audio(packet)
    await link.send_text(link.msg(type="listen", state="detect", text=WAKE_WORD))
    greeting = rec.greeting = Greeting(t_detect=time.monotonic())
    await link.send_text(link.msg(type="listen", state="start", mode="auto"))

    def seen(kind: str, state: str | None = None) -> float | None:
        for e in rec.received():
            if e.t < greeting.t_detect:
                continue
            if kind == "binary" and e.kind == "binary":
                return e.t
            obj = e.obj if e.kind == "text" else None
            if obj and obj.get("type") == kind and (state is None or obj.get("state") == state):
                return e.t
        return None

    await link.wait_until(lambda: seen("tts", "start") is not None, greeting_wait_s)
    greeting.t_tts_start = seen("tts", "start")
    if greeting.t_tts_start is None:
        greeting.note = f"no tts start within {greeting_wait_s:g} s of listen detect"
    else:
        done = lambda: seen("binary") is not None or seen("tts", "stop") is not None  # noqa: E731
        await link.wait_until(done, greeting_wait_s)
        greeting.t_first_audio = seen("binary")
        if seen("tts", "stop") is None and not link.closed:
            await link.send_text(link.msg(type="abort"))
            greeting.t_abort = time.monotonic()
        await link.wait_until(lambda: seen("tts", "stop") is not None, reply_timeout_s)
        greeting.t_tts_stop = seen("tts", "stop")
    rec.complete = not link.closed
    await link.drop()
