"""Real-time pacing of downlink audio on a monotonic clock (no drift).

Frame ``k`` is due at ``base_t + max(0, k - base_k - burst) * frame_s``: the first ``burst + 1``
frames go at once (they fill the board's queue a little), then one per frame duration, always
scheduled from the same origin so sleep errors never accumulate. If the sender falls behind by
more than one frame (synthesis slower than playback, the board's queue ran dry), the schedule is
rebased at that frame with a fresh burst, so it never sends more than ``burst + 1`` frames
ahead of the board's playback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Pacer:
    """Schedules frames of ``frame_s`` seconds; ``burst`` frames may go ahead of real time."""

    def __init__(
        self, frame_s: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.frame_s = frame_s
        self.burst = max(0, burst)
        self._clock = clock
        self._k = 0
        self._base_k = 0
        self._base_t: float | None = None
        self.rebased = 0
        """How many times the schedule restarted after an underrun."""

    def due(self) -> float:
        """Monotonic time at which the next frame may be sent (rebasing on underrun)."""
        now = self._clock()
        if self._base_t is None:
            self._base_t, self._base_k = now, self._k
        due = self._base_t + max(0, self._k - self._base_k - self.burst) * self.frame_s
        if now - due > self.frame_s:
            self._base_t, self._base_k = now, self._k
            self.rebased += 1
            return now
        return due

    def sent(self) -> None:
        """Count one frame as sent."""
        self._k += 1

    def played_out_at(self) -> float:
        """The board's play clock: monotonic time (s) at which it will have played every frame
        sent so far (playback starts with the first frame and runs one frame per ``frame_s``)."""
        if self._base_t is None:
            return self._clock()
        return self._base_t + (self._k - self._base_k) * self.frame_s

    async def wait(self) -> None:
        """Sleep until the next frame is due."""
        delay = self.due() - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)
