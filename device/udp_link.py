"""A board's side of one UDP audio session (protocol.md §4.3), sans-I/O.

Uplink: the server's nonce with length/timestamp/sequence (1, 2, 3 …) patched in, AES-128-CTR
with the header as counter. ``loss``/``reorder`` lose or delay datagrams on purpose (seeded, so
a run repeats): a delayed datagram goes out right after the next one, i.e. arrives late.
Downlink: the firmware's checks (type 0x01, exact length, sequence above the last; gaps are
only counted), then — stricter than the firmware, which would play the noise of a wrong key —
the payload must be mono Opus of the hello's frame duration.
"""

from __future__ import annotations

import random
from collections import Counter

from protocol import udp


class UdpLink:
    """Keys and counters of one audio channel; ``counts`` by code (``sent``, ``received``,
    ``lost-on-purpose``, ``reordered``, ``udp-stale``, ``udp-gap``, ``udp-undecodable`` …)."""

    def __init__(
        self,
        keys: udp.UdpKeys,
        *,
        loss: float = 0.0,
        reorder: float = 0.0,
        rng: random.Random | None = None,
        counts: Counter[str] | None = None,
    ) -> None:
        self.keys = keys
        self.loss, self.reorder = loss, reorder
        self._rng = rng or random.Random(0)
        self._held: bytes | None = None
        self.local_sequence = 0
        self.remote = udp.SequenceGuard()
        self.counts: Counter[str] = Counter() if counts is None else counts
        self.key_override: bytes | None = None
        """Tests: encrypt and decrypt with this key instead of the server's (a wrong key)."""

    def _keys(self) -> udp.UdpKeys:
        if self.key_override is None:
            return self.keys
        return udp.UdpKeys(self.key_override, self.keys.nonce)

    def uplink(self, packet: bytes, timestamp_ms: int = 0) -> list[bytes]:
        """The datagrams to send now for one Opus packet (none, it, or it and a delayed one)."""
        self.local_sequence += 1
        datagram = udp.seal(
            self._keys(), packet, sequence=self.local_sequence, timestamp_ms=timestamp_ms
        )
        self.counts["sent"] += 1
        if self._rng.random() < self.loss:
            self.counts["lost-on-purpose"] += 1
            return []
        if self._held is not None:
            held, self._held = self._held, None
            self.counts["reordered"] += 1
            return [datagram, held]
        if self._rng.random() < self.reorder:
            self._held = datagram
            return []
        return [datagram]

    def downlink(self, datagram: bytes, frame_ms: float) -> bytes | None:
        """The Opus packet of a server datagram, or None (dropped and counted)."""
        try:
            header = udp.parse(datagram)
        except udp.UdpPacketError as exc:
            self.counts[exc.code] += 1
            return None
        verdict = self.remote.accept(header.sequence)
        if verdict is udp.Verdict.STALE:
            self.counts["udp-stale"] += 1
            return None
        if verdict is udp.Verdict.GAP:
            self.counts["udp-gap"] += 1
        payload = udp.open_payload(self._keys(), datagram)
        if udp.opus_duration_ms(payload) != frame_ms:
            self.counts["udp-undecodable"] += 1
            return None
        self.counts["received"] += 1
        return payload
