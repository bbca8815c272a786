"""The UDP audio socket of MQTT + UDP sessions (protocol.md §4.3): one socket, many sessions.

Every datagram is checked (:func:`protocol.udp.parse`), routed by the SSRC that the session's
nonce put in bytes 4–7, then handed to that session's :class:`UdpAudioLink`, which applies the
sequence rule, decrypts, and refuses what is not a mono Opus packet of the negotiated duration
(a wrong key gives random bytes). Only a packet that passes all of that refreshes the session,
moves its sequence on and (re)learns the board's address; the first one tells the server where
to send the downlink (a board sends nothing on UDP until it has audio).

Drops are counted by code (``udp-stale``, ``udp-undecodable``, ``udp-unknown-ssrc``,
``udp-no-address``, ``udp-too-short`` …) in :attr:`UdpAudioEndpoint.counts` and reported to
``on_drop`` (the server's metrics); nothing here raises into the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

from protocol import udp

logger = logging.getLogger(__name__)

Address = tuple[str, int]
DropHandler = Callable[[str], None]


class UdpAudioLink:
    """One session's crypto, sequence numbers and board address (no socket)."""

    def __init__(
        self,
        keys: udp.UdpKeys,
        *,
        uplink_frame_ms: float = 60.0,
        downlink_frame_ms: int = 60,
        count: DropHandler | None = None,
    ) -> None:
        self.keys = keys
        self.uplink_frame_ms = uplink_frame_ms
        self.downlink_frame_ms = downlink_frame_ms
        self.guard = udp.SequenceGuard()
        self.address: Address | None = None
        self.sent = 0
        """Downlink sequence: the last number used (the first packet is 1)."""
        self._count = count or (lambda code: None)

    def receive(self, header: udp.UdpHeader, datagram: bytes, address: Address) -> bytes | None:
        """The Opus packet of an uplink datagram, or None (dropped and counted)."""
        if self.guard.check(header.sequence) is udp.Verdict.STALE:
            self.guard.stale += 1
            self._count("udp-stale")
            return None
        payload = udp.open_payload(self.keys, datagram)
        if udp.opus_duration_ms(payload) != self.uplink_frame_ms:
            self._count("udp-undecodable")
            return None
        if self.guard.accept(header.sequence) is udp.Verdict.GAP:
            self._count("udp-gap")
        if self.address != address:
            if self.address is not None:
                logger.info("board moved from %s:%d to %s:%d", *self.address, *address)
            self.address = address
        return payload

    def seal(self, payload: bytes) -> tuple[bytes, Address] | None:
        """The next downlink datagram and where it goes; None before the board's first packet."""
        if self.address is None:
            self._count("udp-no-address")
            return None
        self.sent += 1
        stamp = (self.sent - 1) * self.downlink_frame_ms
        return udp.seal(self.keys, payload, sequence=self.sent, timestamp_ms=stamp), self.address


AudioReceiver = Callable[[bytes], None]


class UdpAudioEndpoint(asyncio.DatagramProtocol):
    """The bound socket; :meth:`register` a session's SSRC with its link and receiver."""

    def __init__(self, on_drop: DropHandler | None = None) -> None:
        self.counts: Counter[str] = Counter()
        self._on_drop = on_drop
        self._routes: dict[int, tuple[UdpAudioLink, AudioReceiver]] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        self._transport = transport
        self.port = int(transport.get_extra_info("sockname")[1])
        logger.info("UDP audio on %s:%d", host, self.port)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def count(self, code: str) -> None:
        self.counts[code] += 1
        if self._on_drop is not None:
            self._on_drop(code)

    def register(self, link: UdpAudioLink, receiver: AudioReceiver) -> None:
        self._routes[link.keys.ssrc] = (link, receiver)

    def unregister(self, link: UdpAudioLink) -> None:
        route = self._routes.get(link.keys.ssrc)
        if route is not None and route[0] is link:
            del self._routes[link.keys.ssrc]

    def in_use(self, ssrc: int) -> bool:
        return ssrc in self._routes

    def send(self, link: UdpAudioLink, payload: bytes) -> bool:
        """Encrypt and send one downlink Opus packet; False when it could not go out."""
        sealed = link.seal(payload)
        if sealed is None or self._transport is None:
            return False
        self._transport.sendto(*sealed)
        return True

    # ------------------------------------------------------------------ DatagramProtocol

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            header = udp.parse(data)
        except udp.UdpPacketError as exc:
            self.count(exc.code)
            return
        route = self._routes.get(header.ssrc)
        if route is None:
            self.count("udp-unknown-ssrc")
            return
        link, receiver = route
        payload = link.receive(header, data, (addr[0], addr[1]))
        if payload is not None:
            self.counts["udp-accepted"] += 1
            receiver(payload)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable
        logger.debug("UDP error: %s", exc)
