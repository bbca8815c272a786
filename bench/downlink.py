"""Downlink frame lateness, measured in the simulator process without changing device code.

Patches ``device.audio.player.Player.push``/``reset`` for the duration of a ``with`` block and
records each packet's arrival (monotonic s). A reply starts at ``reset`` (entering speaking);
frame *i* is late when it arrives more than 10 ms after ``first + i × 60 ms``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from device.audio.player import Player

LATE_MS = 10.0


class Arrivals:
    def __init__(self) -> None:
        self.replies: dict[int, list[list[float]]] = {}

    def late(self, frame_ms: float = 60.0) -> dict[str, Any]:
        total = late = 0
        for replies in self.replies.values():
            for times in replies:
                for i, t in enumerate(times):
                    total += 1
                    if (t - times[0]) * 1000 - i * frame_ms > LATE_MS:
                        late += 1
        return {
            "frames": total,
            "late": late,
            "late_pct": round(100 * late / total, 2) if total else None,
        }


@contextmanager
def record_arrivals() -> Iterator[Arrivals]:
    arrivals = Arrivals()
    push, reset = Player.push, Player.reset

    def new_push(self: Player, packet: bytes) -> bool:
        replies = arrivals.replies.setdefault(id(self), [[]])
        replies[-1].append(time.monotonic())
        return push(self, packet)

    def new_reset(self: Player) -> None:
        arrivals.replies.setdefault(id(self), []).append([])
        reset(self)

    Player.push, Player.reset = new_push, new_reset  # type: ignore[method-assign]
    try:
        yield arrivals
    finally:
        Player.push, Player.reset = push, reset  # type: ignore[method-assign]
