"""MemoryReturner: one collection (and malloc_trim) after a wave of closed sessions."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from server import memory
from server.memory import MemoryReturner


@pytest.mark.asyncio
async def test_collects_once_after_a_wave_of_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "SETTLE_S", 0.05)
    with ThreadPoolExecutor(1) as executor:
        returner = MemoryReturner(executor)
        for n in range(1, 201):
            returner.opened(n)
        for n in range(199, 100, -1):  # not yet down to half the peak
            returner.closed(n)
        await asyncio.sleep(0.1)
        assert returner.collections == 0
        for n in range(100, 9, -1):  # half or less, many gone: once, after the wave settles
            returner.closed(n)
        await asyncio.sleep(0.2)
        assert returner.collections == 1
        returner.opened(40)
        returner.closed(0)  # a drop of 40 < MIN_DROP since the last collection
        await asyncio.sleep(0.1)
        assert returner.collections == 1
