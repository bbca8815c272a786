"""The MQTT gateway's rules without a broker: credentials, OTA offer, routing, goodbye."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.config import MqttSettings
from server.session.connection import Channel, ChannelClosed, PeerInfo
from server.transport import mqtt_credentials as creds
from server.transport.mqtt import MqttGateway, client_of
from server.transport.mqtt_ota import MqttOtaOffer, transport_for

SECRET = b"s" * 32
MAC = "a0:b7:65:12:34:56"


def test_credentials_round_trip_and_refuse_other_boards() -> None:
    c = creds.issue(SECRET, MAC.upper(), "0b5b6f2a-1111-4222-8333-444455556666")
    assert c.username == MAC and creds.device_of(c.client_id) == MAC
    assert creds.verify(SECRET, c.client_id, c.username, c.password)
    other = creds.issue(SECRET, "a0:b7:65:00:00:01", None)
    assert not creds.verify(SECRET, other.client_id, other.username, c.password)
    assert not creds.verify(SECRET, c.client_id, "a0:b7:65:00:00:01", c.password)
    assert not creds.verify(b"x" * 32, c.client_id, c.username, c.password)
    assert not creds.verify(SECRET, "mosquitto_pub-123", None, None)


def test_secret_file_is_created_once(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret"
    first = creds.load_secret(path)
    assert len(first) == 32 and creds.load_secret(path) == first
    assert path.stat().st_mode & 0o077 == 0


def test_ota_offer_per_device_for_a_mixed_fleet() -> None:
    settings = MqttSettings(enabled=True, default_transport="websocket", devices={MAC: "mqtt"})
    assert transport_for(settings, "a0:b7:65:00:00:01") == "websocket"
    assert transport_for(MqttSettings(), MAC) == "websocket"  # MQTT off
    told: list[tuple[str, str]] = []
    offer = MqttOtaOffer(settings, SECRET, lambda: 1884, lambda c, h: told.append((c, h)))
    assert offer("10.0.0.2", "a0:b7:65:00:00:01", None) is None
    section = offer("10.0.0.2", MAC.upper(), "u-1")
    assert section is not None
    assert told == [(section["client_id"], "10.0.0.2")]  # the UDP server it will be told
    assert section["endpoint"] == "10.0.0.2:1884" and section["keepalive"] == 240
    assert section["publish_topic"] == f"xiaozhi/up/{section['client_id']}"
    assert creds.verify(SECRET, section["client_id"], section["username"], section["password"])


def test_topic_templates() -> None:
    assert client_of("xiaozhi/up/{client_id}", "xiaozhi/up/GID_x@@@a") == "GID_x@@@a"
    assert client_of("xiaozhi/up/{client_id}", "xiaozhi/up/") is None
    assert client_of("xiaozhi/up/{client_id}", "other/GID") is None


class FakeBroker:
    port = 1

    def __init__(self) -> None:
        self.published: list[tuple[str, str]] = []

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, topic: str, text: str) -> None:
        self.published.append((topic, text))


@pytest.fixture
async def gateway() -> AsyncIterator[MqttGateway]:
    seen: list[tuple[Channel, PeerInfo]] = []

    async def handler(channel: Channel, peer: PeerInfo) -> None:
        seen.append((channel, peer))
        hello = await channel.recv()
        assert isinstance(hello, str) and json.loads(hello)["type"] == "hello"
        await channel.send('{"type":"hello","transport":"udp"}')
        with pytest.raises(ChannelClosed):
            while True:
                if json.loads(await channel.recv())["type"] == "goodbye":
                    await channel.close(1000, "device goodbye")

    gw = MqttGateway(MqttSettings(udp_host="127.0.0.1", udp_port=0), handler, secret=SECRET)
    await gw.udp.start("127.0.0.1", 0)
    gw.broker = FakeBroker()
    gw.seen = seen  # type: ignore[attr-defined]
    yield gw
    gw.udp.close()


async def test_hello_starts_a_udp_session_and_device_goodbye_ends_it_silently(
    gateway: MqttGateway,
) -> None:
    c = creds.issue(SECRET, MAC, None)
    gateway.board_connected(c.client_id, "127.0.0.1:5000", "127.0.0.9")
    topic = gateway.publish_topic(c.client_id)
    gateway.board_message(c.client_id, "elsewhere", b'{"type":"hello"}')
    gateway.board_message(c.client_id, topic, b'{"type":"listen","state":"start"}')
    assert gateway.counts == {"mqtt-wrong-topic": 1, "mqtt-no-session": 1}
    gateway.board_message(c.client_id, topic, b'{"type":"hello","version":3,"transport":"udp"}')
    board = gateway.boards[c.client_id]
    assert board.task is not None
    broker = gateway.broker
    assert isinstance(broker, FakeBroker)
    for _ in range(50):
        if broker.published:
            break
        await asyncio.sleep(0.01)
    assert broker.published == [
        (gateway.reply_topic(c.client_id), '{"type":"hello","transport":"udp"}')
    ]
    ((_, peer),) = gateway.seen  # type: ignore[attr-defined]
    assert peer.transport == "udp" and peer.device_id == MAC and peer.udp is not None
    assert peer.udp.server == "127.0.0.9" and peer.udp.port == gateway.udp_port
    assert bytes.fromhex(peer.udp.nonce)[0] == 1 and len(peer.session_id) == 36
    gateway.board_message(c.client_id, topic, b'{"session_id":"x","type":"goodbye"}')
    await asyncio.wait_for(board.task, 2)
    assert len(broker.published) == 1  # no goodbye back (no ping-pong)
    assert board.channel is None


async def test_server_close_sends_goodbye_with_the_session_id(gateway: MqttGateway) -> None:
    c = creds.issue(SECRET, MAC, None)
    gateway.board_connected(c.client_id)
    gateway.board_message(c.client_id, gateway.publish_topic(c.client_id), b'{"type":"hello"}')
    await asyncio.sleep(0.05)
    board = gateway.boards[c.client_id]
    assert board.channel is not None
    session_id, broker = board.channel.session_id, gateway.broker
    assert isinstance(broker, FakeBroker)
    await gateway.close()
    goodbye = json.loads(broker.published[-1][1])
    assert goodbye == {"type": "goodbye", "session_id": session_id}
    assert board.task is not None and board.task.done()


async def test_listen_stop_waits_for_audio_still_in_flight() -> None:
    from protocol import udp
    from server.transport.mqtt_channel import MqttUdpChannel
    from server.transport.udp import UdpAudioEndpoint, UdpAudioLink

    async def publish(text: str) -> None: ...

    endpoint = UdpAudioEndpoint()
    channel = MqttUdpChannel(
        "s", publish, endpoint, UdpAudioLink(udp.UdpKeys.for_session(bytes(16), 7))
    )
    channel.push_text('{"type":"listen","state":"stop"}', stop=True)
    channel.push_text('{"type":"abort"}')
    channel.push_audio(b"late frame")  # sent before the stop, arrived after it
    got = [await asyncio.wait_for(channel.recv(), 1) for _ in range(3)]
    assert got == [b"late frame", '{"type":"listen","state":"stop"}', '{"type":"abort"}']


async def test_udp_server_is_the_host_the_ota_answer_named(gateway: MqttGateway) -> None:
    """Behind NAT or in a container the connection's local address is not reachable."""
    c = creds.issue(SECRET, MAC, None)
    gateway.note_host(c.client_id, "192.168.1.5")
    gateway.board_connected(c.client_id, "10.0.0.7:5000", "172.17.0.2")
    gateway.board_message(c.client_id, gateway.publish_topic(c.client_id), b'{"type":"hello"}')
    await asyncio.sleep(0)
    ((_, peer),) = gateway.seen  # type: ignore[attr-defined]
    assert peer.udp is not None and peer.udp.server == "192.168.1.5"
