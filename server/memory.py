"""Give freed memory back to the OS after many sessions close.

A closed session is garbage in reference cycles (websockets' connection objects, asyncio
callbacks; about 80 objects each), freed only by the cyclic collector's full pass, and glibc
keeps freed heap for reuse. So a server that held 1,000 connections kept their RSS after they
left. When the session count falls to half its peak (and by at least ``MIN_DROP`` sessions),
one second after the last close of the wave a full ``gc.collect()`` runs on the event loop
(a pause of a few ms per 100 closed sessions), then glibc's ``malloc_trim(0)`` in the executor
(skipped without glibc, e.g. on musl).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Final

logger = logging.getLogger(__name__)

MIN_DROP: Final = 64
"""Sessions that must have closed since the peak before collecting is worth it."""
SETTLE_S: Final = 1.0
"""Wait after the last close of a wave before collecting."""


def _load_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


class MemoryReturner:
    """Call :meth:`opened`/:meth:`closed` with the session count after each change."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._trim = _load_malloc_trim()
        self._peak = 0
        self._pending: asyncio.TimerHandle | None = None
        self.collections = 0

    def opened(self, active: int) -> None:
        self._peak = max(self._peak, active)

    def closed(self, active: int) -> None:
        if self._peak - active < MIN_DROP or active > self._peak // 2:
            return
        if self._pending is not None:
            self._pending.cancel()
        self._pending = asyncio.get_running_loop().call_later(SETTLE_S, self._collect, active)

    def cancel(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def _collect(self, active: int) -> None:
        self._pending = None
        self._peak = active
        started = time.perf_counter()
        freed = gc.collect()
        self.collections += 1
        logger.info(
            "memory: %d closed-session objects collected in %.1f ms",
            freed,
            (time.perf_counter() - started) * 1000,
        )
        if self._trim is not None:
            asyncio.get_running_loop().run_in_executor(self._executor, self._trim, 0)
