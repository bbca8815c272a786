"""The sherpa batcher, fake recognizer: concurrent decodes share calls, the wait is bounded."""

from __future__ import annotations

import threading
import time
from typing import Any

from server.transcribe.batching import SherpaBatcher


class FakeRecognizer:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def decode_streams(self, streams: list[Any]) -> None:
        self.calls.append(len(streams))
        time.sleep(0.005)


def test_concurrent_streams_share_one_call() -> None:
    recognizer = FakeRecognizer()
    batcher = SherpaBatcher(recognizer, wait_ms=50)
    barrier = threading.Barrier(4)

    def step(i: int) -> None:
        batcher.enter()
        barrier.wait()
        batcher.decode(object())
        batcher.leave()

    threads = [threading.Thread(target=step, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    batcher.close()
    assert sum(recognizer.calls) == 4 and max(recognizer.calls) >= 2


def test_a_lone_stream_does_not_wait_for_others() -> None:
    recognizer = FakeRecognizer()
    batcher = SherpaBatcher(recognizer, wait_ms=500)
    batcher.enter()
    start = time.monotonic()
    batcher.decode(object())
    elapsed = time.monotonic() - start
    batcher.leave()
    batcher.close()
    assert recognizer.calls == [1] and elapsed < 0.25, "every stream in a step is waiting: go"


def test_the_wait_is_bounded() -> None:
    recognizer = FakeRecognizer()
    batcher = SherpaBatcher(recognizer, wait_ms=10)
    batcher.enter()
    batcher.enter()  # a second stream is mid-step but never asks
    start = time.monotonic()
    batcher.decode(object())
    elapsed = time.monotonic() - start
    batcher.close()
    assert recognizer.calls == [1] and elapsed < 0.2
