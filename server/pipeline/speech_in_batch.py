"""Speech-in of many sessions in few executor calls.

Each session's :class:`~.speech_in_worker.SpeechInWorker` hands its queued frames to the
server's one :class:`SpeechInBatcher`, which keeps at most ``calls`` calls in the executor. A call
takes the frames of every session waiting at that moment: their Opus is decoded, their VAD
windows run as batches across sessions (``accept_many`` of the VAD provider, when it has one),
then each session's frames go through its :class:`~.speech_in.SpeechIn` in order, as one by one.
At low load a call carries one session's frames and starts at once; when many boards talk at
the same moment one call serves all of them, so the model call and the thread hand-off are paid
once per call instead of once per session (a lone silero window costs ~280 µs, one of a batch
of eight ~115 µs; measured on this machine).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Final

from protocol.audio import Pcm
from server.pipeline.speech_in import SpeechIn, SpeechInResult
from server.pipeline.speech_in_queue import Frame
from server.providers.base import VadProvider, VadStream

MAX_SESSIONS_PER_CALL: Final = 64
"""Sessions whose frames one executor call takes at most (the rest wait for the next call)."""

Outcome = list[SpeechInResult] | BaseException
"""A session's results, in frame order, or the error its frames raised."""
AcceptMany = Callable[[Sequence[tuple[VadStream, Pcm]]], list[list[bool]]]


@dataclass(slots=True)
class _Job:
    processor: SpeechIn
    frames: list[Frame]
    done: asyncio.Future[list[SpeechInResult]]


class SpeechInBatcher:
    """Runs sessions' frames in the executor, batching sessions that wait at the same time.

    Used from the event loop only. ``calls``: executor calls in flight at most (the executor's
    thread count lets them run in parallel)."""

    def __init__(self, vad: VadProvider, executor: Executor, calls: int) -> None:
        self._accept_many: AcceptMany | None = getattr(vad, "accept_many", None)
        self._executor = executor
        self._calls = max(1, calls)
        self._waiting: list[_Job] = []
        self._running = 0

    async def feed(self, processor: SpeechIn, frames: list[Frame]) -> list[SpeechInResult]:
        """Process ``frames`` (one session's, in order); their results in order. One call per
        ``processor`` at a time (its worker awaits each)."""
        loop = asyncio.get_running_loop()
        job = _Job(processor, frames, loop.create_future())
        self._waiting.append(job)
        self._start(loop)
        return await job.done

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._waiting and self._running < self._calls:
            jobs = self._waiting[:MAX_SESSIONS_PER_CALL]
            del self._waiting[:MAX_SESSIONS_PER_CALL]
            jobs = [job for job in jobs if not job.done.done()]  # a session that went away
            if not jobs:
                continue
            self._running += 1
            work = [(job.processor, job.frames) for job in jobs]
            call = loop.run_in_executor(self._executor, feed_sessions, work, self._accept_many)
            call.add_done_callback(functools.partial(self._finished, jobs, loop))

    def _finished(
        self,
        jobs: list[_Job],
        loop: asyncio.AbstractEventLoop,
        call: asyncio.Future[list[Outcome]],
    ) -> None:
        self._running -= 1
        outcomes: list[Outcome]
        if call.cancelled():
            outcomes = [asyncio.CancelledError()] * len(jobs)
        elif (failure := call.exception()) is not None:
            outcomes = [failure] * len(jobs)
        else:
            outcomes = call.result()
        for job, outcome in zip(jobs, outcomes, strict=True):
            if job.done.done():
                continue
            if isinstance(outcome, BaseException):
                job.done.set_exception(outcome)
            else:
                job.done.set_result(outcome)
        self._start(loop)


def feed_sessions(
    work: Sequence[tuple[SpeechIn, list[Frame]]], accept_many: AcceptMany | None
) -> list[Outcome]:
    """Feed each session's frames to its SpeechIn (blocking; in the executor). With
    ``accept_many`` the VAD of all sessions runs first, frame position by frame position; the
    decisions are the same as each stream's own. A session's error is its outcome only."""
    decoded: list[list[tuple[Pcm | None, SpeechInResult]]] = []
    for processor, frames in work:
        active = processor.active and processor.vad_stream is not None
        session: list[tuple[Pcm | None, SpeechInResult]] = []
        for frame in frames:
            result = SpeechInResult()
            session.append((processor.decode(frame.payload, result) if active else None, result))
        decoded.append(session)
    decisions, failed = _vad_decisions(work, decoded, accept_many)
    outcomes: list[Outcome] = []
    for i, (processor, frames) in enumerate(work):
        error = failed.get(i)
        if error is not None:
            outcomes.append(error)
            continue
        try:
            outcomes.append(_feed_frames(processor, frames, decoded[i], decisions[i]))
        except Exception as exc:  # this session's failure; the others' results stand
            outcomes.append(exc)
    return outcomes


def _vad_decisions(
    work: Sequence[tuple[SpeechIn, list[Frame]]],
    decoded: list[list[tuple[Pcm | None, SpeechInResult]]],
    accept_many: AcceptMany | None,
) -> tuple[list[list[list[bool] | None]], dict[int, Exception]]:
    """Per session and frame, the VAD decisions (None: SpeechIn runs its VAD itself); and the
    sessions whose VAD failed, with the error."""
    decisions: list[list[list[bool] | None]] = [[None] * len(frames) for _, frames in work]
    failed: dict[int, Exception] = {}
    if accept_many is None:
        return decisions, failed
    for position in range(max((len(frames) for _, frames in work), default=0)):
        owners, items = [], []
        for i, (processor, _) in enumerate(work):
            stream = processor.vad_stream
            if position < len(decoded[i]) and stream is not None and i not in failed:
                pcm = decoded[i][position][0]
                if pcm is not None:
                    owners.append(i)
                    items.append((stream, pcm))
        if not items:
            continue
        try:
            for i, found in zip(owners, accept_many(items), strict=True):
                decisions[i][position] = found
        except Exception as exc:  # the model failed: every session in this batch reports it
            failed.update(dict.fromkeys(owners, exc))
    return decisions, failed


def _feed_frames(
    processor: SpeechIn,
    frames: list[Frame],
    decoded: list[tuple[Pcm | None, SpeechInResult]],
    decisions: list[list[bool] | None],
) -> list[SpeechInResult]:
    """Feed the frames in order; stops after the one that ends the utterance (the rest belong to
    an utterance that is over and are dropped, as they would be one by one)."""
    results: list[SpeechInResult] = []
    for frame, (pcm, result), found in zip(frames, decoded, decisions, strict=True):
        if not processor.active:
            break
        if pcm is None:  # corrupt: reported in result.errors, nothing fed
            results.append(result)
            continue
        results.append(processor.feed_pcm(pcm, frame.arrival_s, result, decisions=found))
        if results[-1].final_text is not None:
            break
    return results
