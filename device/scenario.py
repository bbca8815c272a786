"""Scripted conversations: a :class:`~device.conversation.Conversation` run against a controller.

Modes: ``click`` (auto/realtime), ``wake`` (wake word, then auto; waits out a greeting),
``ptt`` (manual push-to-talk). :func:`run_script` returns one record per spoken request (what was
said, what the server heard, the sentences it answered, latencies) or raises a coded
:class:`~device.errors.ScenarioError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from device.audio.sources import ScriptedSource, Utterance
from device.controller import DeviceController
from device.conversation import (
    Board,
    CancelTimer,
    Conversation,
    ConversationInput,
    Finish,
    HangUp,
    Mode,
    Observed,
    SetTimer,
    Speak,
    Started,
    TimerFired,
    Trigger,
)
from device.errors import ScenarioError
from device.events import DeviceEvent, UtteranceStarted
from protocol.enums import DeviceState

logger = logging.getLogger(__name__)

HANG_UP_TIMEOUT_S = 30.0


@dataclass
class Script:
    utterances: list[Utterance]
    turns: int = 1
    """How many times the utterance list is repeated."""
    mode: Mode = "click"
    wake_word: str = "hey computer"
    think_s: float = 1.0
    abort_after_s: float | None = None
    """Barge in (click) this long after the reply's first audio."""
    turn_timeout_s: float = 30.0
    """Give up when the server sends nothing for this long while a reply is due (s); also the
    longest wait for the mic to open."""
    greeting_grace_s: float = 1.5
    """After a wake word: speak when no greeting started within this long (s)."""


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


class _Runner:
    """Feeds device events and timer expiries to the conversation; runs its actions."""

    def __init__(self, ctl: DeviceController, script: Script, source: ScriptedSource) -> None:
        self.ctl, self.script, self.source = ctl, script, source
        self.plan = [u for _ in range(script.turns) for u in script.utterances]
        self.conversation = Conversation(
            [u.label for u in self.plan],
            mode=script.mode,
            think_s=script.think_s,
            abort_after_s=script.abort_after_s,
            greeting_grace_s=script.greeting_grace_s,
            reply_idle_timeout_s=script.turn_timeout_s,
            mic_timeout_s=script.turn_timeout_s,
        )
        self.inbox: asyncio.Queue[ConversationInput] = asyncio.Queue()
        self.timers: dict[str, asyncio.TimerHandle] = {}

    def board(self) -> Board:
        return Board(self.ctl.state, self.ctl.mic_open)

    def observe(self, event: DeviceEvent) -> None:
        self.inbox.put_nowait(Observed(now_s=time.monotonic(), board=self.board(), event=event))

    def _fire(self, name: str) -> None:
        self.timers.pop(name, None)
        now = time.monotonic()
        quiet = now - self.ctl.last_server_activity_s
        self.inbox.put_nowait(
            TimerFired(now_s=now, board=self.board(), name=name, server_quiet_s=quiet)
        )

    async def run(self) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        self.ctl.subscribe(self.observe)
        try:
            self.inbox.put_nowait(Started(now_s=time.monotonic(), board=self.board()))
            while True:
                inp = await self.inbox.get()
                for action in self.conversation.handle(inp):
                    if isinstance(action, Finish):
                        if action.error is not None:
                            raise action.error
                        return list(action.replies)
                    if isinstance(action, SetTimer):
                        self._cancel(action.name)
                        self.timers[action.name] = loop.call_later(
                            action.delay_s, self._fire, action.name
                        )
                    elif isinstance(action, CancelTimer):
                        self._cancel(action.name)
                    elif isinstance(action, Speak):
                        utt = self.plan[action.index]
                        if action.again:
                            self.source.clear()
                        self.ctl.report(UtteranceStarted(utt.label))
                        self.source.play(utt)
                    elif isinstance(action, Trigger):
                        await self._trigger(action)
                    elif isinstance(action, HangUp):
                        await self._hang_up()
        finally:
            self.ctl.unsubscribe(self.observe)
            for name in list(self.timers):
                self._cancel(name)

    def _cancel(self, name: str) -> None:
        handle = self.timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    async def _trigger(self, action: Trigger) -> None:
        ctl = self.ctl
        if action.kind == "click":
            await ctl.click()
        elif action.kind == "wake":
            await ctl.wake_word(self.script.wake_word)
        elif action.kind == "press":
            await ctl.press()
        else:
            await ctl.release()

    async def _hang_up(self) -> None:
        """Let the reply play out, leave listening (click), drop the channel."""
        ctl = self.ctl
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(HANG_UP_TIMEOUT_S):
                await ctl.player.wait_drained()
                await wait_until(
                    lambda: ctl.state in (DeviceState.LISTENING, DeviceState.IDLE),
                    HANG_UP_TIMEOUT_S,
                    "the board to leave speaking",
                )
        await ctl.hang_up()


async def run_script(ctl: DeviceController, script: Script) -> list[dict[str, Any]]:
    """Run every turn; leaves the device idle with the channel closed. Raises ScenarioError."""
    source = ctl.source
    if not isinstance(source, ScriptedSource):
        raise ScenarioError("scripted turns need a scripted audio source, not the microphone")
    if not script.utterances:
        return []
    source.clear()  # the rest of a turn cut by a lost channel must not open the next turn
    return await _Runner(ctl, script, source).run()
