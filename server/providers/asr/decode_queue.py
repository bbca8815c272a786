"""One worker thread for a slow, serialised engine (Whisper), with a bounded wait to start.

The server's shared executor runs every session's VAD, grammar decoding and Opus work on a few
threads; a Whisper decode (0.3–2 s) there blocks one of them, and a second one waiting for the
model blocks another, so every other session's audio backs up. :class:`DecodeQueue` gives the
engine its own thread instead: requests are decoded one at a time in arrival order, and an
awaited request (:meth:`DecodeQueue.run_async`) that has not *started* within ``max_wait_s`` is
taken out of the queue and refused with a retryable ``asr-queue-timeout``
:class:`~server.errors.ProviderError` (the user is told the recogniser is busy instead of
waiting in silence). Blocking requests (:meth:`DecodeQueue.run`: benchmarks, batch
transcription) wait as long as it takes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

from server.errors import ErrorCode, ProviderError

T = TypeVar("T")

THREAD_NAME: Final = "xiaozhi-whisper"


class DecodeQueue:
    """A single-thread FIFO of decode requests; thread-safe, shared by all sessions."""

    def __init__(self, max_wait_s: float, *, name: str = THREAD_NAME, what: str = "Whisper"):
        self.max_wait_s = max_wait_s
        """Longest an awaited request may wait to start (s); 0 or less: no bound."""
        self._what = what
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._waiting = 0
        self._running = 0
        self._closed = False
        self.refused = 0
        """Requests refused because they waited longer than ``max_wait_s`` (since start)."""

    @property
    def waiting(self) -> int:
        """Requests queued and not started yet (the one decoding is not counted)."""
        return self._waiting

    @property
    def running(self) -> int:
        """1 while a request is being decoded, else 0."""
        return self._running

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the queue's thread, after the requests ahead of it; blocking, no
        bound on the wait (do not call from the queue's own thread)."""
        future = self._submit(fn, args)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise self._closed_error() from None

    async def run_async(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the queue's thread, awaited. Refused with a retryable
        ``asr-queue-timeout`` ProviderError when it has not started within ``max_wait_s``; a
        request whose caller is cancelled while it waits is taken out of the queue."""
        future = self._submit(fn, args)
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = future.cancel()  # False once it runs: then it is waited for to the end

        timer = (
            asyncio.get_running_loop().call_later(self.max_wait_s, expire)
            if self.max_wait_s > 0
            else None
        )
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # our caller is cancelled (wrap_future took the request out of the queue)
            if expired:
                with self._lock:
                    self.refused += 1
                raise ProviderError(
                    f"the speech recogniser is busy: {self._what} did not start on this "
                    f"utterance within {self.max_wait_s:g} s ({self._waiting} more waiting)",
                    code=ErrorCode.ASR_QUEUE_TIMEOUT,
                    retryable=True,
                ) from None
            raise self._closed_error() from None
        finally:
            if timer is not None:
                timer.cancel()

    def close(self) -> None:
        """Refuse new requests and drop the queued ones; a decode in progress runs to its end
        on its own (the thread is not joined). Safe to call twice."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _submit(self, fn: Callable[..., T], args: tuple[Any, ...]) -> concurrent.futures.Future[T]:
        def job() -> T:
            with self._lock:
                self._waiting -= 1
                self._running += 1
            try:
                return fn(*args)
            finally:
                with self._lock:
                    self._running -= 1

        def dequeued(future: concurrent.futures.Future[T]) -> None:
            if future.cancelled():  # never ran: job() did not count it out
                with self._lock:
                    self._waiting -= 1

        with self._lock:
            if self._closed:
                raise self._closed_error()
            self._waiting += 1
        try:
            future = self._executor.submit(job)
        except RuntimeError:  # shut down between the check and the submit
            with self._lock:
                self._waiting -= 1
            raise self._closed_error() from None
        future.add_done_callback(dequeued)
        return future

    def _closed_error(self) -> ProviderError:
        return ProviderError(
            f"the speech recogniser is shut down ({self._what})", code=ErrorCode.ASR_FAILED
        )
