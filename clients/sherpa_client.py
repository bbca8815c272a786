"""Client of the sherpa-onnx streaming protocol: float32 chunks, ``Done``, JSON results."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed

from clients.connect import connect_with_retries


@dataclass
class SherpaResult:
    segments: dict[int, str] = field(default_factory=dict)
    """Final (or latest) text of each segment."""
    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    """(monotonic s, message) of every JSON result."""
    got_done: bool = False
    close_code: int | None = None

    @property
    def text(self) -> str:
        return " ".join(t for _, t in sorted(self.segments.items()) if t)


async def transcribe_sherpa(
    url: str,
    samples: np.ndarray,
    *,
    chunk_samples: int = 1600,
    pace: float = 1.0,
    on_message: Callable[[dict[str, Any]], None] | None = None,
    tries: int = 5,
    first_delay_s: float = 1.0,
) -> SherpaResult:
    """Send int16 ``samples`` as float32 messages of ``chunk_samples`` at ``pace`` × real time
    (0: as fast as possible), then ``Done``; collect results until ``Done!`` or the close."""
    ws = await connect_with_retries(url, tries=tries, first_delay_s=first_delay_s)
    result = SherpaResult()

    async def receive() -> None:
        try:
            async for message in ws:
                if message == "Done!":
                    result.got_done = True
                    continue
                data = json.loads(message)
                result.messages.append((time.monotonic(), data))
                result.segments[int(data["segment"])] = str(data["text"])
                if on_message is not None:
                    on_message(data)
        except ConnectionClosed:
            pass

    receiver = asyncio.create_task(receive())
    floats = samples.astype(np.float32) / 32768.0
    start = time.monotonic()
    try:
        for at in range(0, len(floats), chunk_samples):
            await ws.send(floats[at : at + chunk_samples].tobytes())
            if pace > 0:
                due = start + (at + chunk_samples) / 16000 / pace
                await asyncio.sleep(max(0.0, due - time.monotonic()))
        await ws.send("Done")
        await receiver
    finally:
        receiver.cancel()
        await ws.close()
    result.close_code = ws.close_code
    return result
