"""The async side of one transcription stream: a bounded queue in, updates out.

Audio waits in a bounded queue (``queue_packets`` items); when it is full the producer's
``await put`` blocks, so the socket read pauses and TCP pushes back on the client: transcription
never drops audio. Each item is processed by :class:`~.transcriber.PcmTranscriber` in an
executor, one at a time; the updates go to ``deliver`` with the item's tag (e.g. its ``seq``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from protocol.audio import Pcm
from server.transcribe.transcriber import Update

logger = logging.getLogger(__name__)


class Transcribing(Protocol):
    """What the worker drives (:class:`~.transcriber.PcmTranscriber` or a wrapper of it)."""

    def feed(self, pcm: Pcm, arrival_s: float) -> list[Update]: ...

    def finish(self, arrival_s: float) -> list[Update]: ...

    def close(self) -> None: ...


Deliver = Callable[[list[Update], int], Awaitable[None]]
"""``(updates, tag)``: called in order, from the worker task."""


@dataclass(frozen=True, slots=True)
class _Audio:
    pcm: Pcm
    tag: int
    arrival_s: float


@dataclass(frozen=True, slots=True)
class _Finish:
    tag: int
    done: asyncio.Future[None]


class StreamWorker:
    """Runs one :class:`Transcribing`; start with :meth:`start`, stop with :meth:`close`."""

    def __init__(
        self,
        make_transcriber: Callable[[], Transcribing],
        executor: Executor,
        deliver: Deliver,
        *,
        max_items: int = 64,
    ) -> None:
        self._make = make_transcriber
        self._executor = executor
        self.deliver = deliver
        self._queue: asyncio.Queue[_Audio | _Finish] = asyncio.Queue(max_items)
        self._task: asyncio.Task[None] | None = None
        self._transcriber: Transcribing | None = None
        self.last_tag = -1
        """Tag of the last item fully processed."""

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="transcribe")

    async def put(self, pcm: Pcm, tag: int) -> None:
        """Queue audio (waits while the queue is full: backpressure)."""
        await self._queue.put(_Audio(pcm, tag, time.monotonic()))

    async def finish(self, tag: int) -> None:
        """Queue the end of the stream and wait until its final updates were delivered."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Finish(tag, done))
        await done

    async def close(self) -> None:
        """Stop processing and return the pooled decoders."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
        transcriber, self._transcriber = self._transcriber, None
        if transcriber is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, transcriber.close)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._transcriber = transcriber = await loop.run_in_executor(self._executor, self._make)
        while True:
            item = await self._queue.get()
            if isinstance(item, _Audio):
                updates = await loop.run_in_executor(
                    self._executor, transcriber.feed, item.pcm, item.arrival_s
                )
            else:
                updates = await loop.run_in_executor(
                    self._executor, transcriber.finish, time.monotonic()
                )
            self.last_tag = item.tag
            try:
                await self.deliver(updates, item.tag)
            except asyncio.CancelledError:
                raise
            except Exception:  # a dead socket must not stop the stream (it may resume)
                logger.debug("delivering transcription updates failed", exc_info=True)
            if isinstance(item, _Finish) and not item.done.done():
                item.done.set_result(None)
