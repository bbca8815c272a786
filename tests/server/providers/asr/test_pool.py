"""The bounded decoder pool."""

from __future__ import annotations

import threading
import time

import pytest

from server.providers.asr.pool import Pool, PoolBusy


def test_lazy_creation_reuse_and_bound() -> None:
    made: list[int] = []

    def factory() -> int:
        made.append(len(made))
        return made[-1]

    pool: Pool[int] = Pool(factory, size=2, timeout_s=0.05)
    a, b = pool.acquire(), pool.acquire()
    assert (a, b) == (0, 1) and pool.created == 2
    with pytest.raises(PoolBusy):
        pool.acquire()
    pool.release(a)
    assert pool.acquire() == a  # reused, not rebuilt
    assert made == [0, 1]


def test_failed_factory_frees_its_slot() -> None:
    calls = 0

    def factory() -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return object()

    pool: Pool[object] = Pool(factory, size=1, timeout_s=0.05)
    with pytest.raises(RuntimeError):
        pool.acquire()
    assert pool.created == 0
    item = pool.acquire()
    pool.discard(item)
    assert pool.created == 0


def test_waiter_wakes_on_release() -> None:
    pool: Pool[int] = Pool(lambda: 7, size=1, timeout_s=5.0)
    held = pool.acquire()
    got: list[int] = []
    t = threading.Thread(target=lambda: got.append(pool.acquire()))
    t.start()
    t.join(0.1)
    assert not got
    pool.release(held)
    t.join(5)
    assert got == [7]


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Pool(lambda: 1, size=0, timeout_s=1)


def test_spares_are_made_in_the_background_up_to_the_size() -> None:
    made: list[int] = []

    def factory() -> int:
        made.append(len(made))
        return made[-1]

    pool: Pool[int] = Pool(factory, size=3, timeout_s=1.0, spare=2)
    pool.start_spares()
    deadline = time.monotonic() + 5
    while pool.idle < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.idle == 2 and pool.created == 2  # two spares ready before anyone asked
    taken = [pool.acquire(), pool.acquire()]
    while pool.created < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert pool.created == 3 and pool.idle == 1  # topped up, never past the size
    assert sorted([*taken, pool.acquire()]) == [0, 1, 2]


def test_a_failing_spare_factory_frees_its_slot_and_stops() -> None:
    def broken() -> int:
        raise RuntimeError("no model")

    pool: Pool[int] = Pool(lambda: 7, size=2, timeout_s=1.0, spare=1, spare_factory=broken)
    pool.start_spares()
    time.sleep(0.1)
    assert pool.created == 0 and pool.acquire() == 7  # callers still get objects
