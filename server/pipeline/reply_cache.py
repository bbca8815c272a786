"""A server-wide cache of spoken sentences: replies repeat ("The living room lamp is on."), so a
sentence's framed Opus packets are kept and sent again instead of synthesising, resampling and
encoding it every time (measured: TTS and Opus encode were 146 of 256 ms CPU per command turn).

Keyed by everything that changes the bytes: the text, the reply language (the routing voice
picks its engine by it), the engine, the downlink's rate, frame duration and binary version, and
the lead-in silence of a first sentence. Packets carry no per-reply state (v2 timestamps are 0),
so a cached sentence is the same bytes a fresh synthesis would frame. Only sentences the main
voice spoke whole are stored (never a fallback voice's, never one cut by a failure). Bounded by
bytes, least recently used out first; used from the event loop only.

A sentence being synthesised is *in flight* (:meth:`ReplyAudioCache.start`): another session
that needs the same sentence meanwhile awaits that synthesis (:meth:`in_flight`) instead of
running its own (boards that start together say the same things: 40 syntheses of "The lamp is
on." at once made the first answers ~1 s late).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass

PER_ENTRY_BYTES = 200
"""Bookkeeping counted per sentence on top of its packets (key, list, dict slot)."""


@dataclass(frozen=True, slots=True)
class SentenceKey:
    text: str
    language: str
    voice: str
    rate_hz: int
    frame_duration_ms: int
    version: int
    lead_in_ms: int


class ReplyAudioCache:
    """At most ``max_bytes`` of packets; :meth:`get` counts hits and misses."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[SentenceKey, tuple[bytes, ...]] = OrderedDict()
        self._flying: dict[SentenceKey, asyncio.Future[tuple[bytes, ...] | None]] = {}
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is kept (not counted as a hit or a miss)."""
        return key in self._entries

    def get(self, key: SentenceKey) -> tuple[bytes, ...] | None:
        packets = self._entries.get(key)
        if packets is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return packets

    def put(self, key: SentenceKey, packets: list[bytes]) -> None:
        """Keep ``packets`` for ``key``; a sentence bigger than the whole cache is not kept."""
        size = _size(packets)
        if not packets or size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= _size(old)
        self._entries[key] = tuple(packets)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= _size(evicted)

    def in_flight(self, key: SentenceKey) -> asyncio.Future[tuple[bytes, ...] | None] | None:
        """The synthesis of ``key`` in progress: resolves to its packets, or None when it was
        not kept (failed, cut, or spoken by the fallback voice)."""
        return self._flying.get(key)

    def start(self, key: SentenceKey) -> None:
        """The caller synthesises ``key`` now and will :meth:`settle` it."""
        if key not in self._flying:
            self._flying[key] = asyncio.get_running_loop().create_future()

    def settle(self, key: SentenceKey, packets: tuple[bytes, ...] | None) -> None:
        """End the synthesis of ``key``: waiters get ``packets`` (None: synthesise yourselves).
        Safe to call again (later calls do nothing)."""
        future = self._flying.pop(key, None)
        if future is not None and not future.done():
            future.set_result(packets)


def _size(packets: tuple[bytes, ...] | list[bytes]) -> int:
    return sum(len(p) for p in packets) + PER_ENTRY_BYTES
