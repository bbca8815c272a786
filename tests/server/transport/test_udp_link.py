"""The server's UDP audio link and endpoint: sequence rule, wrong key, address learning."""

from __future__ import annotations

import asyncio
import os

import numpy as np

from protocol import udp
from protocol.opus import OpusEncoder
from server.transport.udp import UdpAudioEndpoint, UdpAudioLink

KEYS = udp.UdpKeys.for_session(bytes(range(16)), 0xABCD0001)
BOARD = ("127.0.0.1", 40000)


def opus_packets(n: int) -> list[bytes]:
    encoder = OpusEncoder(16000, 60)
    t = np.arange(960) / 16000
    pcm = (6000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    return [encoder.encode(pcm) for _ in range(n)]


def test_uplink_in_order_gap_stale_and_wrong_key() -> None:
    codes: list[str] = []
    link = UdpAudioLink(KEYS, count=codes.append)
    packets = opus_packets(4)
    datagrams = [udp.seal(KEYS, p, sequence=i + 1) for i, p in enumerate(packets)]

    def receive(d: bytes) -> bytes | None:
        return link.receive(udp.parse(d), d, BOARD)

    assert receive(datagrams[0]) == packets[0]
    assert receive(datagrams[2]) == packets[2]  # 2 lost: a gap, still played
    assert receive(datagrams[1]) is None  # late: older than the last accepted
    assert receive(datagrams[2]) is None  # duplicate
    wrong = udp.UdpKeys(os.urandom(16), KEYS.nonce)
    garbage = [udp.seal(wrong, p, sequence=10 + i) for i, p in enumerate(opus_packets(30))]
    decoded = [receive(d) for d in garbage]
    assert sum(d is not None for d in decoded) <= 3
    assert codes.count("udp-gap") >= 1 and codes.count("udp-stale") == 2
    assert codes.count("udp-undecodable") >= 27
    assert link.guard.accepted == 2 + sum(d is not None for d in decoded)  # garbage: no move


def test_downlink_waits_for_the_board_address_then_counts_from_one() -> None:
    codes: list[str] = []
    link = UdpAudioLink(KEYS, count=codes.append, downlink_frame_ms=60)
    assert link.seal(b"\x01") is None and codes == ["udp-no-address"]
    first = udp.seal(KEYS, opus_packets(1)[0], sequence=1)
    link.receive(udp.parse(first), first, BOARD)
    sealed = [link.seal(b"abc"), link.seal(b"abcd")]
    headers = [udp.parse(s[0]) for s in sealed if s is not None]
    assert [(h.sequence, h.timestamp_ms, h.type) for h in headers] == [(1, 0, 1), (2, 60, 1)]
    assert all(s is not None and s[1] == BOARD for s in sealed)


async def test_endpoint_routes_by_ssrc_and_counts_strangers() -> None:
    endpoint = UdpAudioEndpoint()
    await endpoint.start("127.0.0.1", 0)
    got: asyncio.Queue[bytes] = asyncio.Queue()
    link = UdpAudioLink(KEYS, count=endpoint.count)
    endpoint.register(link, got.put_nowait)
    loop = asyncio.get_running_loop()
    sock, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, remote_addr=("127.0.0.1", endpoint.port)
    )
    try:
        stranger = udp.UdpKeys.for_session(bytes(16), 0x99)
        sock.sendto(udp.seal(stranger, b"x", sequence=1))
        sock.sendto(b"\x01\x00")
        packet = opus_packets(1)[0]
        sock.sendto(udp.seal(KEYS, packet, sequence=1))
        assert await asyncio.wait_for(got.get(), 2) == packet
    finally:
        sock.close()
        endpoint.close()
    assert endpoint.counts["udp-unknown-ssrc"] == 1 and endpoint.counts["udp-too-short"] == 1
    assert link.address is not None and link.address[0] == "127.0.0.1"
