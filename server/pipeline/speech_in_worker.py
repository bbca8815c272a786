"""The per-session speech-in worker: takes frames and control items from the bounded
:class:`~.speech_in_queue.SpeechInQueue` in order, runs :class:`~.speech_in.SpeechIn` in the
shared executor (one call at a time) and posts what it found to the session's inbox as
:class:`~server.session.events.SpeechProgressed` / :class:`~server.session.events.UtteranceEnded`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import Executor

from protocol.enums import ListenMode
from server.config import VadSettings
from server.errors import ErrorCode, ProviderError
from server.metrics import ServerMetrics
from server.pipeline.speech_in import SpeechIn, SpeechInResult
from server.pipeline.speech_in_batch import SpeechInBatcher
from server.pipeline.speech_in_queue import (
    Begin,
    Cancel,
    Finish,
    Frame,
    Item,
    Phrases,
    SpeechInQueue,
)
from server.providers.base import AsrProvider, Transcript, VadProvider
from server.session import events as ev

MAX_FRAMES_PER_CALL = 8
"""Queued frames of one session processed in one executor call (480 ms of 60 ms frames): under
load a session catches up with one thread hand-off instead of one per frame."""


class SpeechInWorker:
    """Feeds one session's audio to VAD/ASR; posts results tagged with their utterance epoch."""

    def __init__(
        self,
        vad: VadProvider,
        asr: AsrProvider,
        vad_settings: VadSettings,
        executor: Executor,
        metrics: ServerMetrics,
        post: ev.Post,
        log: logging.LoggerAdapter[logging.Logger],
        *,
        max_frames: int = 50,
        clock: Callable[[], float],
        slow_notice_s: float = 0.0,
        batcher: SpeechInBatcher | None = None,
        speaker: str | None = None,
    ) -> None:
        """``slow_notice_s`` > 0: a transcript still not known that long after the utterance
        ended posts :class:`~server.session.events.RecognitionSlow` (once). ``batcher``: the
        server's, shared by all sessions (None: this session's own, one call at a time).
        ``speaker``: who talks (see :class:`~.speech_in.SpeechIn`)."""
        self._speaker = speaker
        self._batcher = batcher or SpeechInBatcher(vad, executor, calls=1)
        self._slow_notice_s = slow_notice_s
        self._vad, self._asr, self._vad_settings = vad, asr, vad_settings
        self._executor, self._metrics, self._post, self._log = executor, metrics, post, log
        self._clock = clock
        self.queue = SpeechInQueue(max_frames)
        self._processor: SpeechIn | None = None
        self._current = -1
        """Epoch whose frames are being processed (-1: none)."""

    def put_frame(self, frame: Frame) -> bool:
        """Queue a frame; False when an older frame was dropped to make room."""
        return self.queue.put_frame(frame)

    def begin(self, epoch: int, mode: ListenMode) -> None:
        self.queue.put_control(Begin(epoch, mode))

    def set_phrases(self, phrases: tuple[str, ...] | None) -> None:
        self.queue.put_control(Phrases(phrases))

    def finish(self, epoch: int) -> None:
        self.queue.put_control(Finish(epoch))

    def cancel(self) -> None:
        self.queue.put_control(Cancel())

    async def run(self) -> None:
        """Process items until cancelled; a failing item is logged, counted and skipped."""
        loop = asyncio.get_running_loop()
        make = functools.partial(
            SpeechIn,
            self._vad,
            self._asr,
            self._vad_settings,
            async_finish=True,
            speaker=self._speaker,
        )
        self._processor = await loop.run_in_executor(self._executor, make)
        while True:
            item = await self.queue.get()
            try:
                await self._step(item, loop)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._log.exception("speech-in processing failed; continuing")
                self._metrics.error(ErrorCode.UPLINK_FAILED)

    async def _step(self, item: Item, loop: asyncio.AbstractEventLoop) -> None:
        processor = self._processor
        assert processor is not None
        run = functools.partial(loop.run_in_executor, self._executor)
        if isinstance(item, Begin):
            self._current = item.epoch
            await run(
                functools.partial(processor.begin, endpointing=item.mode != ListenMode.MANUAL)
            )
        elif isinstance(item, Phrases):
            await run(processor.set_phrases, item.phrases)
        elif isinstance(item, Cancel):
            self._current = -1
            await run(processor.cancel)
        elif isinstance(item, Finish):
            if item.epoch == self._current:
                self._current = -1
                self._report(
                    item.epoch, await self._settle(await run(processor.finish), item.epoch)
                )
        elif item.epoch == self._current and processor.active:
            # frames that queued up behind this one (the executor was busy) go in the same call
            frames = [item, *self.queue.take_frames(item.epoch, MAX_FRAMES_PER_CALL - 1)]
            results = await self._batcher.feed(processor, frames)
            for result in results:
                if result.final_text is not None:
                    self._current = -1
                    result = await self._settle(result, item.epoch)
                self._report(item.epoch, result)

    async def _settle(self, result: SpeechInResult, epoch: int) -> SpeechInResult:
        """Await a slow or network recogniser's answer on the event loop (no executor thread
        held); tell the core when it is late (``slow_notice_s``)."""
        stream, result.pending = result.pending, None
        if stream is None:
            return result
        answer: asyncio.Future[Transcript] = asyncio.ensure_future(
            stream.finish_async()  # type: ignore[attr-defined]
        )
        try:
            if self._slow_notice_s > 0:
                done, _ = await asyncio.wait({answer}, timeout=self._slow_notice_s)
                if not done:
                    self._post(ev.RecognitionSlow(epoch, self._clock()))
            transcript: Transcript = await answer
            result.transcript, result.final_text = transcript, transcript.text
            result.rejected, result.language = transcript.rejected, transcript.language
        except ProviderError as exc:
            self._log.warning("ASR failed to finalise: %s", exc)
            result.errors.append(exc.code)
            result.asr_failed = True
        finally:
            if not answer.done():  # cancelled while waiting: leave the recogniser's queue
                answer.cancel()
            await asyncio.get_running_loop().run_in_executor(self._executor, stream.close)
        result.final_s = self._clock()
        return result

    def _report(self, epoch: int, result: SpeechInResult) -> None:
        for code in result.errors:
            self._metrics.error(code)
            if code == "corrupt-audio":
                self._metrics.frame_dropped(code)
        now = self._clock()
        if result.speech_run_ms > 0:
            self._post(ev.SpeechProgressed(epoch, result.speech_run_ms, now))
        if result.final_text is None:
            if result.stable_text:
                self._post(ev.PartialStable(epoch, result.stable_text, now))
            return
        marks = {
            "speech_end_detected": result.detected_s or now,
            "asr_final": result.final_s or now,
        }
        if result.speech_end_s is not None:
            marks["speech_end"] = result.speech_end_s
        self._log.info("utterance ended (%s): %r", result.end_reason or "-", result.final_text)
        self._post(
            ev.UtteranceEnded(
                epoch,
                result.final_text,
                result.heard_speech,
                now,
                rejected=result.rejected,
                asr_failed=result.asr_failed,
                asr_busy=ErrorCode.ASR_QUEUE_TIMEOUT in result.errors,
                language=result.language,
                marks=marks,
            )
        )

    async def close(self) -> None:
        """Release the processor (returns pooled ASR/VAD resources)."""
        processor, self._processor = self._processor, None
        if processor is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, processor.close)
