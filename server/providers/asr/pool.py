"""A bounded, thread-safe pool of expensive engine objects (e.g. ASR decoders)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from server.providers.base import ProviderError

T = TypeVar("T")


class PoolBusy(ProviderError):
    """Every pooled object stayed busy for the whole wait."""

    code = "asr-busy"


class Pool(Generic[T]):
    """At most ``size`` objects, made lazily by ``factory``; :meth:`acquire` waits (bounded)."""

    def __init__(self, factory: Callable[[], T], size: int, timeout_s: float) -> None:
        if size < 1:
            raise ValueError("pool size must be >= 1")
        self._factory = factory
        self.size = size
        self.timeout_s = timeout_s
        self._idle: list[T] = []
        self._created = 0
        self._cond = threading.Condition()

    @property
    def created(self) -> int:
        with self._cond:
            return self._created

    @property
    def idle(self) -> int:
        with self._cond:
            return len(self._idle)

    def add(self, item: T) -> None:
        """Put a pre-built object in the pool (counts towards ``size``)."""
        with self._cond:
            if self._created >= self.size:
                raise ValueError("pool is full")
            self._created += 1
            self._idle.append(item)
            self._cond.notify()

    def try_acquire(self) -> T | None:
        """An idle object, a new one if below ``size``, else None at once (no waiting)."""
        try:
            return self.acquire(timeout_s=0.0)
        except PoolBusy:
            return None

    def acquire(self, timeout_s: float | None = None) -> T:
        """An idle object, a new one if below ``size``, or wait up to ``timeout_s``
        (default: the pool's).

        Raises :class:`PoolBusy` (retryable) when the wait runs out. Blocking: never call it
        on the event loop.
        """
        wait_s = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + wait_s
        with self._cond:
            while not self._idle and self._created >= self.size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PoolBusy(
                        f"all {self.size} decoders busy for {wait_s:.1f} s",
                        retryable=True,
                    )
                self._cond.wait(remaining)
            if self._idle:
                return self._idle.pop()
            self._created += 1  # reserve the slot; build outside the lock
        try:
            return self._factory()
        except BaseException:
            with self._cond:
                self._created -= 1
                self._cond.notify()
            raise

    def wait_for_release(self, timeout_s: float) -> None:
        """Block until an object is released (or ``timeout_s`` passes)."""
        with self._cond:
            if not self._idle:
                self._cond.wait(timeout_s)

    def release(self, item: T) -> None:
        with self._cond:
            self._idle.append(item)
            self._cond.notify()

    def discard(self, item: T) -> None:
        """Forget a broken object (frees its slot)."""
        with self._cond:
            self._created -= 1
            self._cond.notify()
