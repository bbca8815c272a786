"""The simulator's MQTT + UDP channel without sockets: hello, downlink checks, uplink framing."""

from __future__ import annotations

import itertools
import json
import os
from typing import Any

import numpy as np

from device.identity import DeviceIdentity
from device.mqtt_transport import MqttChannel
from protocol import udp
from protocol.messages import ServerHello, UdpParams
from protocol.opus import OpusEncoder

KEYS = udp.UdpKeys.for_session(bytes(range(16)), 0x0BADCAFE)


def channel() -> tuple[MqttChannel, list[bytes]]:
    audio: list[bytes] = []

    async def on_message(_message: Any) -> None: ...

    ch = MqttChannel(
        DeviceIdentity(mac="a0:b7:65:12:34:56"),
        on_message=on_message,
        on_audio=audio.append,
        on_closed=lambda _reason: None,
    )
    hello = ServerHello(
        transport="udp",
        session_id="s-1",
        udp=UdpParams(server="127.0.0.1", port=9, key=KEYS.key_hex, nonce=KEYS.nonce_hex),
    )
    ch._server_hello(hello)
    return ch, audio


def opus(n: int) -> list[bytes]:
    encoder = OpusEncoder(24000, 60)
    pcm = (5000 * np.sin(np.arange(1440) / 5)).astype(np.int16)
    return [encoder.encode(pcm) for _ in range(n)]


def test_hello_is_the_firmwares_mqtt_hello() -> None:
    ch, _ = channel()
    hello = json.loads(ch.hello_text())
    assert list(hello)[:3] == ["type", "version", "transport"]
    assert (hello["version"], hello["transport"]) == (3, "udp")
    assert hello["audio_params"]["frame_duration"] == 60
    assert ch.identity.session_id == "s-1"


def test_downlink_checks_like_the_firmware_and_counts_what_it_drops() -> None:
    ch, audio = channel()
    packets = opus(4)
    ch._datagram(udp.seal(KEYS, packets[0], sequence=1))
    ch._datagram(udp.seal(KEYS, packets[1], sequence=3))  # gap: played
    ch._datagram(udp.seal(KEYS, packets[2], sequence=2))  # late: dropped
    ch._datagram(udp.seal(KEYS, packets[3], sequence=3))  # duplicate: dropped
    bad = bytearray(udp.seal(KEYS, packets[3], sequence=9))
    bad[0] = 0x02
    ch._datagram(bytes(bad))
    ch._datagram(udp.seal(KEYS, packets[3], sequence=10)[:-1])  # length mismatch
    assert audio == packets[:2]
    assert ch.counts["udp-gap"] == 1 and ch.counts["udp-stale"] == 2
    assert ch.counts["udp-wrong-type"] == 1 and ch.counts["udp-length-mismatch"] == 1


def test_wrong_key_decodes_nothing_and_counts_it() -> None:
    ch, audio = channel()
    ch.key_override = os.urandom(16)
    for seq, packet in enumerate(opus(30), start=1):
        ch._datagram(udp.seal(KEYS, packet, sequence=seq))
    assert len(audio) <= 3  # random bytes rarely look like 60 ms mono Opus
    assert ch.counts["udp-undecodable"] >= 27


def test_uplink_numbers_from_one_and_loses_or_delays_on_purpose() -> None:
    from device.udp_link import UdpLink

    exact = UdpLink(KEYS)
    sent = [d for p in opus(3) for d in exact.uplink(p)]
    assert [udp.parse(d).sequence for d in sent] == [1, 2, 3]
    assert udp.open_payload(KEYS, sent[0])[:1] == opus(1)[0][:1]

    lossy = UdpLink(KEYS, loss=0.2, reorder=0.2)
    order = [udp.parse(d).sequence for p in opus(200) for d in lossy.uplink(p)]
    c = lossy.counts
    assert c["sent"] == 200 and c["lost-on-purpose"] > 10 and c["reordered"] > 10
    assert len(order) == 200 - c["lost-on-purpose"] - (1 if lossy._held else 0)
    late = sum(1 for a, b in itertools.pairwise(order) if b < a)
    assert late == c["reordered"]  # each delayed datagram arrives right after a newer one
