"""The running replies of one session: their producer tasks and ledgers.

A reply's producer (:class:`~server.pipeline.speech_out.Reply`) runs as a task; when it raises,
:class:`ReplyFailed` goes into the inbox (the core then ends the turn cleanly). When the core
says a reply is over, its ledger line is logged and, if it ran to its end, observed in the
metrics.

At most one reply is *speculative* (started on a stable partial, before its turn exists): what
it posts is held in a :class:`HeldOutbox` and its device tool calls wait on
:func:`gated_tools`. Adopted by the turn, the held events go into the inbox with the turn's id
and the tools run; discarded, its task is cancelled and the held events are dropped, so the
device never hears it and no tool ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from iot.tools import ToolCaller, ToolOutcome
from server.errors import ErrorCode
from server.metrics import ServerMetrics
from server.pipeline.speech_out import Reply
from server.session import events as ev
from server.session.ledger import TurnLedger


@dataclass
class _Running:
    task: asyncio.Task[None]
    ledger: TurnLedger
    more: list[asyncio.Task[None]] = dataclasses.field(default_factory=list)
    """Producers added by :meth:`ReplyTasks.extend` (the answer after a "one moment")."""

    def tasks(self) -> list[asyncio.Task[None]]:
        return [self.task, *self.more]


class HeldOutbox:
    """A speculative reply's outbox: holds its events until :meth:`adopt`, then forwards them
    (held ones first) re-tagged with the turn's id."""

    def __init__(self, post: ev.Post) -> None:
        self._post = post
        self._held: list[ev.Event] = []
        self.turn_id: int | None = None
        self.adopted = asyncio.Event()

    def __call__(self, event: ev.Event) -> None:
        if self.turn_id is None:
            self._held.append(event)
        else:
            self._post(_retag(event, self.turn_id))

    def adopt(self, turn_id: int) -> None:
        self.turn_id = turn_id
        held, self._held = self._held, []
        for event in held:
            self._post(_retag(event, turn_id))
        self.adopted.set()


def _retag(event: ev.Event, turn_id: int) -> ev.Event:
    """``event`` as posted by turn ``turn_id`` (a reply's events all carry ``turn_id``)."""
    if hasattr(event, "turn_id"):
        changed: ev.Event = dataclasses.replace(event, turn_id=turn_id)  # type: ignore[arg-type]
        return changed
    return event


def gated_tools(call_tool: ToolCaller, outbox: HeldOutbox) -> ToolCaller:
    """``call_tool`` that waits until the speculation is adopted (cancelled with it if not)."""

    async def call(name: str, arguments: dict[str, Any]) -> ToolOutcome:
        await outbox.adopted.wait()
        return await call_tool(name, arguments)

    return call


@dataclass
class _Speculation:
    running: _Running
    reply: Reply
    outbox: HeldOutbox
    history: list[dict[str, Any]]


class ReplyTasks:
    def __init__(
        self, post: ev.Post, metrics: ServerMetrics, log: logging.LoggerAdapter[logging.Logger]
    ) -> None:
        self._post, self._metrics, self._log = post, metrics, log
        self._running: dict[int, _Running] = {}
        self._speculation: _Speculation | None = None

    def start(self, reply: Reply, text: str, fixed: bool) -> None:
        task = asyncio.create_task(
            self._produce(reply, text, fixed, self._post), name=f"reply-{reply.turn_id}"
        )
        self._running[reply.turn_id] = _Running(task, reply.ledger)

    def extend(
        self, turn_id: int, make: Callable[[TurnLedger], Reply], text: str, fixed: bool
    ) -> None:
        """Run a further producer for turn ``turn_id`` (built by ``make`` with the turn's
        ledger); the turn ends when the core says so, with all its producers."""
        running = self._running.get(turn_id)
        if running is None:
            return
        reply = make(running.ledger)
        running.more.append(
            asyncio.create_task(
                self._produce(reply, text, fixed, self._post), name=f"reply-{turn_id}+"
            )
        )

    def speculate(
        self, reply: Reply, text: str, outbox: HeldOutbox, history: list[dict[str, Any]]
    ) -> None:
        """Run ``reply`` (built with ``outbox`` as its post and gated tools) unheard."""
        self.discard()
        task = asyncio.create_task(self._produce(reply, text, False, outbox), name="speculation")
        self._speculation = _Speculation(_Running(task, reply.ledger), reply, outbox, history)

    def adopt(self, turn_id: int, marks: dict[str, float]) -> list[dict[str, Any]] | None:
        """Make the speculation turn ``turn_id``'s reply; returns its chat history (the
        session's from now on), None when there is no live speculation to adopt."""
        spec, self._speculation = self._speculation, None
        if spec is None:
            return None
        now = time.monotonic()
        ledger = spec.reply.ledger
        ledger.turn_id = spec.reply.turn_id = turn_id
        early = dict(ledger.marks)
        ledger.marks = {}
        for stage, at_s in marks.items():
            ledger.mark(stage, at_s)
        for stage, at_s in early.items():  # done ahead: counted as ready when adopted
            ledger.mark(stage, max(at_s, now))
        self._running[turn_id] = spec.running
        spec.outbox.adopt(turn_id)
        self._log.info("turn %d adopts the answer prepared while the user finished", turn_id)
        return spec.history

    def discard(self) -> None:
        """Drop the speculation: cancel its producer; nothing it made is ever posted."""
        spec, self._speculation = self._speculation, None
        if spec is not None and not spec.running.task.done():
            spec.running.task.cancel()

    async def _produce(self, reply: Reply, text: str, fixed: bool, post: ev.Post) -> None:
        try:
            await reply.run(text, fixed=fixed)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # ExceptionGroup from the task group, or a plain error
            self._log.error("reply %d failed", reply.turn_id, exc_info=exc)
            post(ev.ReplyFailed(reply.turn_id, ErrorCode.TURN_FAILED, time.monotonic()))

    def cancel(self, turn_id: int) -> None:
        running = self._running.get(turn_id)
        for task in running.tasks() if running is not None else []:
            if not task.done():
                task.cancel()
        self._log.info("turn %d cancelled", turn_id)

    def finish(self, turn_id: int, completed: bool, frames: int) -> TurnLedger | None:
        """Reply ``turn_id`` is over: log its ledger (``frames`` sent) and return it."""
        running = self._running.pop(turn_id, None)
        if running is None:
            return None
        for task in running.tasks():
            if not task.done():
                task.cancel()
        ledger = running.ledger
        ledger.cancelled = not completed
        self._log.info("%s frames=%d", ledger.summary(), frames)
        if completed:
            ledger.observe(self._metrics)
            self._metrics.turn_completed()
        return ledger

    async def close(self) -> None:
        """Cancel every producer and wait for them."""
        tasks = [t for r in self._running.values() for t in r.tasks()]
        if self._speculation is not None:
            tasks.append(self._speculation.running.task)
            self._speculation = None
        self._running.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
