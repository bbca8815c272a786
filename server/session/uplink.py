"""The per-session speech-in worker: takes frames and control items from the bounded
:class:`~.uplink_queue.UplinkQueue` in order and runs the
:class:`~server.pipeline.uplink.UplinkProcessor` in the shared executor, one call at a time."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

from protocol.enums import ListenMode
from server.pipeline.uplink import UplinkProcessor, UplinkResult
from server.session.deps import SessionDeps
from server.session.uplink_queue import Begin, Cancel, Finish, Frame, PhrasesSource, UplinkQueue

OnResult = Callable[[int, UplinkResult], Awaitable[None]]


class Uplink:
    """Feeds one session's audio to VAD/ASR; reports each result with its utterance epoch."""

    def __init__(
        self,
        deps: SessionDeps,
        on_result: OnResult,
        log: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self._deps = deps
        self._on_result = on_result
        self._log = log
        self._queue = UplinkQueue(deps.uplink_queue_frames)
        self._processor: UplinkProcessor | None = None
        self._current = -1
        """Epoch whose frames are being processed (-1: none)."""

    def open(self) -> None:
        """Create the processor (after hello): its Opus decoder and VAD stream."""
        if self._processor is None:
            deps = self._deps
            self._processor = UplinkProcessor(deps.vad, deps.asr, deps.settings.vad)

    def put_frame(self, frame: Frame) -> bool:
        """Queue a frame; False when an older frame was dropped to make room."""
        return self._queue.put_frame(frame)

    def begin(self, epoch: int, mode: ListenMode, phrases: PhrasesSource | None) -> None:
        self._queue.put_control(Begin(epoch, mode, phrases))

    def finish(self, epoch: int) -> None:
        self._queue.put_control(Finish(epoch))

    def cancel(self) -> None:
        self._queue.put_control(Cancel())

    async def run(self) -> None:
        """Process items until cancelled; a failing item is logged and skipped."""
        while True:
            item = await self._queue.get()
            try:
                await self._step(item)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._log.exception("uplink processing failed; continuing")
                self._deps.metrics.error("uplink-failed")

    async def _step(self, item: Begin | Finish | Cancel | Frame) -> None:
        processor = self._processor
        if processor is None:
            return
        loop = asyncio.get_running_loop()
        executor = self._deps.executor
        if isinstance(item, Begin):
            self._current = item.epoch
            endpointing = item.mode != ListenMode.MANUAL
            # Frames wait in the bounded queue meanwhile; processing catches up (RTF << 1).
            phrases = await item.phrases() if item.phrases is not None else None
            begin = functools.partial(processor.begin, phrases, endpointing=endpointing)
            await loop.run_in_executor(executor, begin)
        elif isinstance(item, Cancel):
            self._current = -1
            await loop.run_in_executor(executor, processor.cancel)
        elif isinstance(item, Finish):
            if item.epoch == self._current:
                self._current = -1
                result = await loop.run_in_executor(executor, processor.finish)
                await self._on_result(item.epoch, result)
        elif item.epoch == self._current and processor.active:
            result = await loop.run_in_executor(
                executor, processor.feed, item.payload, item.arrival_s
            )
            if result.final_text is not None:
                self._current = -1
            await self._on_result(item.epoch, result)

    async def close(self) -> None:
        """Release the processor (returns pooled ASR/VAD resources)."""
        processor, self._processor = self._processor, None
        if processor is not None:
            await asyncio.get_running_loop().run_in_executor(self._deps.executor, processor.close)
