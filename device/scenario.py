"""Scripted conversations: speak utterances through a controller like a user would.

Modes: ``click`` (auto/realtime), ``wake`` (wake word then auto), ``ptt`` (manual push-to-talk).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from device.audio.sources import ScriptedSource, Utterance
from device.controller import DeviceController
from protocol.enums import DeviceState

logger = logging.getLogger(__name__)


class ScenarioError(Exception):
    """A scripted step did not happen in time (no answer from the server, channel failed)."""


@dataclass
class Script:
    utterances: list[Utterance]
    turns: int = 1
    """How many times the utterance list is repeated."""
    mode: str = "click"
    wake_word: str = "hey computer"
    think_s: float = 1.0
    abort_after_s: float | None = None
    """Barge in (click) this long after the reply's first audio."""
    turn_timeout_s: float = 30.0


async def _wait(event: asyncio.Event, timeout_s: float, what: str) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
    except TimeoutError as exc:
        raise ScenarioError(f"timed out after {timeout_s} s waiting for {what}") from exc


async def wait_until(pred: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``pred`` every 10 ms; ScenarioError after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while True:
        if pred():
            return
        if loop.time() > end:
            raise ScenarioError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.01)


async def _wait_state(ctl: DeviceController, states: set[DeviceState], timeout_s: float) -> None:
    names = "/".join(sorted(s.value for s in states))
    await wait_until(lambda: ctl.state in states, timeout_s, f"state {names}")


async def _barge_in(ctl: DeviceController, after_s: float) -> None:
    turn = ctl.turn
    await wait_until(lambda: turn.first_audio is not None, 60.0, "the reply's first audio")
    await asyncio.sleep(after_s)
    if ctl.state == DeviceState.SPEAKING:
        await ctl.click()


async def run_script(ctl: DeviceController, script: Script) -> None:
    """Run every turn; leaves the device idle with the channel closed."""
    source = ctl.source
    if not isinstance(source, ScriptedSource):
        raise ScenarioError("scripted turns need a scripted audio source, not the microphone")
    plan = [u for _ in range(script.turns) for u in script.utterances]
    for i, utt in enumerate(plan):
        if i:
            await asyncio.sleep(script.think_s)
        if script.mode == "ptt":
            await ctl.press()
            if ctl.state != DeviceState.LISTENING:
                raise ScenarioError(f"push-to-talk failed: {ctl.channel.error}")
            source.play(utt)
            await wait_until(lambda: not source.busy, 120.0, "the utterance to be sent")
            await ctl.release()
        else:
            if ctl.state == DeviceState.IDLE:
                if script.mode == "wake":
                    await ctl.wake_word(script.wake_word)
                else:
                    await ctl.click()
            # auto mode: the mic opens with the listen start that follows the last playback
            await wait_until(lambda: ctl.mic_open, script.turn_timeout_s, "the mic to open")
            source.play(utt)
        barge = (
            asyncio.create_task(_barge_in(ctl, script.abort_after_s))
            if script.abort_after_s is not None
            else None
        )
        try:
            await _wait(ctl.turn_ended, script.turn_timeout_s, f"the reply to {utt.label!r}")
        finally:
            if barge is not None:
                barge.cancel()
    await ctl.player.wait_drained()
    if script.mode != "ptt":
        await _wait_state(ctl, {DeviceState.LISTENING, DeviceState.IDLE}, script.turn_timeout_s)
    if ctl.state == DeviceState.LISTENING:
        await ctl.click()
    ctl.channel.close()
