"""The per-session speech-in queue: audio frames (bounded, drop-oldest) interleaved in order
with rare control items (never dropped), like pipecat's data vs system frames."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from protocol.enums import ListenMode


@dataclass(frozen=True, slots=True)
class Frame:
    epoch: int
    payload: bytes
    arrival_s: float


@dataclass(frozen=True, slots=True)
class Begin:
    epoch: int
    mode: ListenMode


@dataclass(frozen=True, slots=True)
class Phrases:
    """Grammar phrases from now on (None: free text)."""

    phrases: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Finish:
    epoch: int


@dataclass(frozen=True, slots=True)
class Cancel:
    pass


Control = Begin | Phrases | Finish | Cancel
Item = Frame | Control


class SpeechInQueue:
    """At most ``max_frames`` frames wait; a new frame beyond that drops the oldest frame."""

    def __init__(self, max_frames: int) -> None:
        self.max_frames = max(1, max_frames)
        self._items: deque[Item] = deque()
        self._frames = 0
        self._ready = asyncio.Event()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def put_frame(self, frame: Frame) -> bool:
        """Queue a frame; returns False if an older frame had to be dropped for it."""
        dropped = False
        if self._frames >= self.max_frames:
            for index, item in enumerate(self._items):
                if isinstance(item, Frame):
                    del self._items[index]
                    self._frames -= 1
                    self.dropped += 1
                    dropped = True
                    break
        self._items.append(frame)
        self._frames += 1
        self._ready.set()
        return not dropped

    def put_control(self, item: Control) -> None:
        self._items.append(item)
        self._ready.set()

    def take_frames(self, epoch: int, limit: int) -> list[Frame]:
        """Up to ``limit`` more frames of ``epoch`` from the head of the queue (stops at the
        first control item or other epoch, so the order of everything is kept)."""
        taken: list[Frame] = []
        while len(taken) < limit and self._items:
            head = self._items[0]
            if not isinstance(head, Frame) or head.epoch != epoch:
                break
            taken.append(head)
            self._items.popleft()
            self._frames -= 1
        return taken

    async def get(self) -> Item:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        if isinstance(item, Frame):
            self._frames -= 1
        return item
