"""Retries with backoff for provider calls, acting on :attr:`ProviderError.retryable`.

Only errors that say a second attempt may succeed are retried (a refused connection, a busy
pool); a bad request or a missing model fails at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from server.errors import ProviderError

T = TypeVar("T")
logger = logging.getLogger(__name__)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int = 3,
    backoff_s: float = 0.2,
    what: str = "provider call",
) -> T:
    """Await ``call()``; on a retryable :class:`ProviderError` wait ``backoff_s`` (doubling) and
    try again, ``attempts`` times in all. The last error is raised unchanged."""
    delay = backoff_s
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except ProviderError as exc:
            if not exc.retryable or attempt == attempts:
                raise
            logger.info("%s failed (%s), retry %d in %.2f s", what, exc.code, attempt, delay)
            await asyncio.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")
