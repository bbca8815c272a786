"""The session's one inbox: every event for the core, in arrival order, bounded.

Three kinds of writers: the socket reader's binary audio (:meth:`put_audio`: at most
``max_audio`` wait, the oldest audio is dropped for a new one), the reader's text messages
(:meth:`put_message`: the reader waits while ``max_messages`` are queued, so a flooding client is
slowed down by TCP instead of growing memory) and the session's own workers (:meth:`post`: rare,
bounded by their producers, never dropped or blocked).
"""

from __future__ import annotations

import asyncio
from collections import deque

from server.session import events as ev


class Inbox:
    def __init__(self, *, max_audio: int = 100, max_messages: int = 64) -> None:
        self.max_audio = max(1, max_audio)
        self.max_messages = max(1, max_messages)
        self._items: deque[ev.Event] = deque()
        self._audio = 0
        self._messages = 0
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self.dropped_audio = 0

    def __len__(self) -> int:
        return len(self._items)

    def post(self, event: ev.Event) -> None:
        """Queue an internal event (worker, reply, timer)."""
        self._items.append(event)
        self._ready.set()

    def put_audio(self, event: ev.BinaryReceived) -> bool:
        """Queue an audio frame; False when the oldest waiting frame was dropped for it."""
        dropped = False
        if self._audio >= self.max_audio:
            for index, item in enumerate(self._items):
                if isinstance(item, ev.BinaryReceived):
                    del self._items[index]
                    self._audio -= 1
                    self.dropped_audio += 1
                    dropped = True
                    break
        self._items.append(event)
        self._audio += 1
        self._ready.set()
        return not dropped

    async def put_message(self, event: ev.MessageReceived | ev.BadMessage) -> None:
        """Queue a device text message, waiting while ``max_messages`` are already queued."""
        while self._messages >= self.max_messages:
            self._room.clear()
            await self._room.wait()
        self._items.append(event)
        self._messages += 1
        self._ready.set()

    async def get(self, timeout_s: float | None = None) -> ev.Event | None:
        """The next event, or None when ``timeout_s`` passes first."""
        if not self._items:
            self._ready.clear()
            if timeout_s is not None and timeout_s <= 0:
                return None
            try:
                async with asyncio.timeout(timeout_s):
                    while not self._items:
                        self._ready.clear()
                        await self._ready.wait()
            except TimeoutError:
                return None
        item = self._items.popleft()
        if isinstance(item, ev.BinaryReceived):
            self._audio -= 1
        elif isinstance(item, ev.MessageReceived | ev.BadMessage):
            self._messages -= 1
            self._room.set()
        return item
