"""A server-wide cache of spoken sentences: replies repeat ("The living room lamp is on."), so a
sentence's framed Opus packets are kept and sent again instead of synthesising, resampling and
encoding it every time (measured: TTS and Opus encode were 146 of 256 ms CPU per command turn).

Keyed by everything that changes the bytes: the text, the reply language (the routing voice
picks its engine by it), the engine, the downlink's rate, frame duration and binary version, and
the lead-in silence of a first sentence. Packets carry no per-reply state (v2 timestamps are 0),
so a cached sentence is the same bytes a fresh synthesis would frame. Only sentences the main
voice spoke whole are stored (never a fallback voice's, never one cut by a failure). Bounded by
bytes, least recently used out first; used from the event loop only.
"""

from __future__ import annotations

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
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

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


def _size(packets: tuple[bytes, ...] | list[bytes]) -> int:
    return sum(len(p) for p in packets) + PER_ENTRY_BYTES
