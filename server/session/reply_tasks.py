"""The running replies of one session: their producer tasks and ledgers.

A reply's producer (:class:`~server.pipeline.speech_out.Reply`) runs as a task; when it raises,
:class:`ReplyFailed` goes into the inbox (the core then ends the turn cleanly). When the core
says a reply is over, its ledger line is logged and, if it ran to its end, observed in the
metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from server.errors import ErrorCode
from server.metrics import ServerMetrics
from server.pipeline.speech_out import Reply
from server.session import events as ev
from server.session.ledger import TurnLedger


@dataclass
class _Running:
    task: asyncio.Task[None]
    ledger: TurnLedger


class ReplyTasks:
    def __init__(
        self, post: ev.Post, metrics: ServerMetrics, log: logging.LoggerAdapter[logging.Logger]
    ) -> None:
        self._post, self._metrics, self._log = post, metrics, log
        self._running: dict[int, _Running] = {}

    def start(self, reply: Reply, text: str, fixed: bool) -> None:
        task = asyncio.create_task(self._produce(reply, text, fixed), name=f"reply-{reply.turn_id}")
        self._running[reply.turn_id] = _Running(task, reply.ledger)

    async def _produce(self, reply: Reply, text: str, fixed: bool) -> None:
        try:
            await reply.run(text, fixed=fixed)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # ExceptionGroup from the task group, or a plain error
            self._log.error("reply %d failed", reply.turn_id, exc_info=exc)
            self._post(ev.ReplyFailed(reply.turn_id, ErrorCode.TURN_FAILED, time.monotonic()))

    def cancel(self, turn_id: int) -> None:
        running = self._running.get(turn_id)
        if running is not None and not running.task.done():
            running.task.cancel()
        self._log.info("turn %d cancelled", turn_id)

    def finish(self, turn_id: int, completed: bool, frames: int) -> TurnLedger | None:
        """Reply ``turn_id`` is over: log its ledger (``frames`` sent) and return it."""
        running = self._running.pop(turn_id, None)
        if running is None:
            return None
        if not running.task.done():
            running.task.cancel()
        ledger = running.ledger
        ledger.cancelled = not completed
        self._log.info("%s frames=%d", ledger.summary(), frames)
        if completed:
            ledger.observe(self._metrics)
            self._metrics.turn_completed()
        return ledger

    async def close(self) -> None:
        """Cancel every producer and wait for them."""
        tasks = [r.task for r in self._running.values()]
        self._running.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
