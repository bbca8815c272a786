"""Waiting for a condition the server reaches on its own (a sweep, an expiry), with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tests.timing import scaled


async def eventually(condition: Callable[[], bool], within_s: float = 5.0) -> bool:
    """True as soon as ``condition()`` holds; False after ``scaled(within_s)``."""
    deadline = time.monotonic() + scaled(within_s)
    for _ in range(1_000_000):
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(scaled(0.02))
    return condition()
