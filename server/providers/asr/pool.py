"""A bounded, thread-safe pool of expensive engine objects (e.g. ASR decoders)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from server.providers.base import ProviderError

T = TypeVar("T")
logger = logging.getLogger(__name__)


class PoolBusy(ProviderError):
    """Every pooled object stayed busy for the whole wait."""

    code = "asr-busy"


class Pool(Generic[T]):
    """At most ``size`` objects, made lazily by ``factory``; :meth:`acquire` waits (bounded).

    With ``spare`` > 0 a background thread keeps that many idle objects ready (made by
    ``spare_factory``, default ``factory``) while the pool is below ``size``, so a caller rarely
    waits for one to be made."""

    def __init__(
        self,
        factory: Callable[[], T],
        size: int,
        timeout_s: float,
        *,
        spare: int = 0,
        spare_factory: Callable[[], T] | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("pool size must be >= 1")
        self._factory = factory
        self.size = size
        self.timeout_s = timeout_s
        self._idle: list[T] = []
        self._created = 0
        self._cond = threading.Condition()
        self.spare = spare
        self._spare_factory = spare_factory or factory
        self._low = threading.Event()

    def start_spares(self) -> None:
        """Start keeping ``spare`` idle objects (after :meth:`add` of any pre-built ones)."""
        if self.spare > 0:
            threading.Thread(target=self._keep_spares, name="pool-spares", daemon=True).start()
            self._low.set()

    def _keep_spares(self) -> None:
        """Make objects while fewer than ``spare`` are idle and the pool is below ``size``."""
        while True:
            self._low.wait()
            self._low.clear()
            while True:
                with self._cond:
                    if len(self._idle) >= self.spare or self._created >= self.size:
                        break
                    self._created += 1  # reserve the slot; build outside the lock
                try:
                    item = self._spare_factory()
                except Exception:
                    logger.exception("making a spare pooled object failed; not retrying")
                    with self._cond:
                        self._created -= 1
                        self._cond.notify()
                    return
                with self._cond:
                    self._idle.append(item)
                    self._cond.notify()

    def _check_spares(self) -> None:
        """Wake the spare keeper when the idle objects ran low (call holding the lock)."""
        if self.spare and len(self._idle) < self.spare and self._created < self.size:
            self._low.set()

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
                item = self._idle.pop()
                self._check_spares()
                return item
            self._created += 1  # reserve the slot; build outside the lock
            self._check_spares()
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
