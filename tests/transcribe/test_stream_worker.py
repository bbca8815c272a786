"""The stream worker's bounded queue (backpressure, nothing dropped) and in-order delivery."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from protocol.audio import Pcm
from server.transcribe.stream_worker import StreamWorker
from server.transcribe.transcriber import PartialText, SegmentFinal, Update


class GatedTranscriber:
    """Echoes the first sample of each chunk as a partial; blocks until ``gate`` opens."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate

    def feed(self, pcm: Pcm, arrival_s: float) -> list[Update]:
        self.gate.wait(5)
        return [PartialText(0, str(int(pcm[0])), 0.0)]

    def finish(self, arrival_s: float) -> list[Update]:
        return [SegmentFinal(0, "end", 0.0, 1.0)]

    def close(self) -> None:
        pass


async def test_full_queue_makes_the_producer_wait_and_nothing_is_lost() -> None:
    gate = threading.Event()
    seen: list[tuple[str, int]] = []

    async def deliver(updates: list[Update], tag: int) -> None:
        seen.extend((u.text, tag) for u in updates)

    with ThreadPoolExecutor(1) as pool:
        worker = StreamWorker(lambda: GatedTranscriber(gate), pool, deliver, max_items=2)
        worker.start()
        for i in range(3):  # one in the transcriber, two queued
            await asyncio.wait_for(worker.put(np.full(4, i, np.int16), i), 1)
        fourth = asyncio.ensure_future(worker.put(np.full(4, 3, np.int16), 3))
        for _ in range(5):
            await asyncio.sleep(0)  # let the loop run the put as far as it can go
        assert not fourth.done(), "a full queue blocks the producer (backpressure)"
        gate.set()
        await asyncio.wait_for(fourth, 5)
        await asyncio.wait_for(worker.finish(4), 5)
        await worker.close()
    assert seen == [("0", 0), ("1", 1), ("2", 2), ("3", 3), ("end", 4)]
