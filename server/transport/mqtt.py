"""The MQTT + UDP endpoint for boards (protocol.md §4): boards in, sessions out.

A board's MQTT connection is permanent; a *session* starts with each ``hello`` it publishes
(``transport: "udp"``) and is handed to the same session handler as a WebSocket connection,
wrapped in a :class:`~server.transport.mqtt_channel.MqttUdpChannel`. The gateway gives each
session fresh key material (16 random key bytes, a nonce with type 0x01 and a unique SSRC),
routes the board's later JSON to it and its UDP datagrams (by SSRC) to it. A new hello replaces
the session (no goodbye: boards before v2.3.0 would close the new one); an MQTT disconnect ends
it. The board's goodbye ends it without an answer; any other end sends ``goodbye``.

The broker side is pluggable (:class:`Broker`): the embedded broker
(:mod:`server.transport.mqtt_broker`, which authenticates boards with the OTA-issued
credentials, subscribes each to its reply topic on connect, since a board never sends
SUBSCRIBE, and confines it to its own topics) or a client of an external broker that does
the auto-subscription itself (:mod:`server.transport.mqtt_external`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from protocol import udp
from protocol.messages import UdpParams
from server.config import MqttSettings
from server.session.connection import Channel, PeerInfo
from server.transport import mqtt_credentials
from server.transport.mqtt_channel import MqttUdpChannel
from server.transport.udp import DropHandler, UdpAudioEndpoint, UdpAudioLink

logger = logging.getLogger(__name__)

SessionHandler = Callable[[Channel, PeerInfo], Awaitable[None]]


class Broker(Protocol):
    """What the gateway needs from the MQTT side."""

    port: int

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, topic: str, text: str) -> None: ...


@dataclass
class Board:
    """One connected board (known from CONNECT, or from its first message on an external
    broker)."""

    client_id: str
    device_id: str
    remote: str = ""
    local_host: str = ""
    """The address the board reached us on (the UDP ``server`` it is told, by default)."""
    channel: MqttUdpChannel | None = None
    task: asyncio.Task[None] | None = None


def topic_for(template: str, client_id: str) -> str:
    return template.replace("{client_id}", client_id)


def client_of(template: str, topic: str) -> str | None:
    """The client id a topic of ``template`` names, else None."""
    head, _, tail = template.partition("{client_id}")
    if not topic.startswith(head) or not topic.endswith(tail) or len(topic) <= len(head + tail):
        return None
    client = topic[len(head) : len(topic) - len(tail)]
    return client if "/" not in client else None


class MqttGateway:
    """Boards over MQTT + UDP; ``port``/``udp_port`` are bound after :meth:`start`."""

    def __init__(
        self,
        settings: MqttSettings,
        handler: SessionHandler,
        *,
        secret: bytes,
        downlink_frame_ms: int = 60,
        on_drop: DropHandler | None = None,
    ) -> None:
        self.settings, self._handler, self.secret = settings, handler, secret
        self._downlink_frame_ms = downlink_frame_ms
        self.udp = UdpAudioEndpoint(on_drop)
        self.boards: dict[str, Board] = {}
        self.broker: Broker | None = None
        self.sessions_started = 0
        self._told_hosts: dict[str, str] = {}
        """client id → the host its OTA answer named (the UDP ``server`` it is told)."""

    @property
    def port(self) -> int:
        return self.broker.port if self.broker is not None else 0

    @property
    def udp_port(self) -> int:
        return self.udp.port

    @property
    def counts(self) -> dict[str, int]:
        """Dropped/accepted datagrams and refused messages by code."""
        return dict(self.udp.counts)

    async def start(self) -> None:
        s = self.settings
        await self.udp.start(s.udp_host, s.udp_port)
        if s.broker == "external":
            from server.transport.mqtt_external import ExternalBroker

            self.broker = ExternalBroker(s, self)
        else:
            from server.transport.mqtt_broker import EmbeddedBroker

            self.broker = EmbeddedBroker(s, self)
        try:
            await self.broker.start()
        except BaseException:
            self.udp.close()
            raise

    async def close(self) -> None:
        """End every session with a goodbye, then stop the broker and the UDP socket."""
        tasks = []
        for board in list(self.boards.values()):
            if board.channel is not None:
                await board.channel.close(1001, "server stopping")
            if board.task is not None:
                tasks.append(board.task)
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self.broker is not None:
            broker, self.broker = self.broker, None
            await broker.close()
        self.udp.close()

    # ------------------------------------------------------------------ rules for the broker

    def authenticate(self, client_id: str, username: str | None, password: str | None) -> bool:
        ok = mqtt_credentials.verify(self.secret, client_id, username, password)
        if not ok:
            self.udp.count("mqtt-auth-refused")
            logger.info(
                "MQTT CONNECT refused for %r: not credentials this server issued", client_id
            )
        return ok

    def note_host(self, client_id: str, host: str) -> None:
        """The OTA answer told this board to reach us at ``host`` (behind NAT or in a container
        that is the right UDP ``server``, not the address the connection arrived on)."""
        self._told_hosts[client_id] = host

    def publish_topic(self, client_id: str) -> str:
        return topic_for(self.settings.publish_topic, client_id)

    def reply_topic(self, client_id: str) -> str:
        return topic_for(self.settings.reply_topic, client_id)

    # ------------------------------------------------------------------ board events

    def board_connected(self, client_id: str, remote: str = "", local_host: str = "") -> Board:
        old = self.boards.get(client_id)
        if old is not None and old.channel is not None:
            old.channel.lost("board reconnected")
        device_id = mqtt_credentials.device_of(client_id) or ""
        board = Board(client_id, device_id, remote, local_host)
        self.boards[client_id] = board
        logger.info("board %s connected over MQTT from %s", device_id or client_id, remote or "?")
        return board

    def board_disconnected(self, client_id: str, remote: str | None = None) -> None:
        """The MQTT connection from ``remote`` ended (None: whichever is current); a board that
        already reconnected from elsewhere is left alone."""
        board = self.boards.get(client_id)
        if board is not None and (remote is None or board.remote == remote):
            del self.boards[client_id]
            if board.channel is not None:
                board.channel.lost("MQTT connection lost")
            logger.info("board %s disconnected from MQTT", board.device_id or client_id)

    def board_message(self, client_id: str, topic: str, payload: bytes) -> None:
        """A board's PUBLISH (called in arrival order, never awaits)."""
        board = self.boards.get(client_id) or self.board_connected(client_id)
        if topic != self.publish_topic(client_id):
            self.udp.count("mqtt-wrong-topic")
            logger.info("board %s published to %r; ignored", client_id, topic)
            return
        try:
            text = payload.decode("utf-8")
            obj = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            obj, text = None, payload.decode("utf-8", "replace")
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind == "hello":
            self._start_session(board, text, obj if isinstance(obj, dict) else {})
            return
        channel = board.channel
        if channel is None or channel.closed:
            self.udp.count("mqtt-no-session")
            logger.info("board %s sent %s with no open session; ignored", client_id, kind)
            return
        stop = kind == "listen" and isinstance(obj, dict) and obj.get("state") == "stop"
        channel.push_text(text, goodbye=kind == "goodbye", stop=stop)

    # ------------------------------------------------------------------ sessions

    def _new_keys(self) -> udp.UdpKeys:
        while True:
            ssrc = int.from_bytes(os.urandom(4), "big")
            if ssrc and not self.udp.in_use(ssrc):
                return udp.UdpKeys.for_session(os.urandom(16), ssrc)

    def _start_session(self, board: Board, hello: str, obj: dict[str, object]) -> None:
        if board.channel is not None:
            board.channel.lost("replaced by a new hello")
        params = obj.get("audio_params")
        frame_ms = params.get("frame_duration", 60) if isinstance(params, dict) else 60
        keys = self._new_keys()
        link = UdpAudioLink(
            keys,
            uplink_frame_ms=float(frame_ms) if isinstance(frame_ms, int | float) else 60.0,
            downlink_frame_ms=self._downlink_frame_ms,
            count=self.udp.count,
        )
        session_id = str(uuid.uuid4())
        reply = self.reply_topic(board.client_id)

        async def publish(text: str) -> None:
            if self.broker is None:
                raise ConnectionError("MQTT endpoint stopped")
            await self.broker.publish(reply, text)

        channel = MqttUdpChannel(session_id, publish, self.udp, link)
        channel.push_text(hello)
        board.channel = channel
        told = self._told_hosts.get(board.client_id)
        server = self.settings.public_host or told or board.local_host or "127.0.0.1"
        peer = PeerInfo(
            device_id=board.device_id,
            client_id=board.client_id,
            remote=board.remote,
            transport="udp",
            udp=UdpParams(
                server=server, port=self.udp.port, key=keys.key_hex, nonce=keys.nonce_hex
            ),
            session_id=session_id,
        )
        self.sessions_started += 1
        board.task = asyncio.create_task(self._run(board, channel, peer), name="mqtt-session")

    async def _run(self, board: Board, channel: MqttUdpChannel, peer: PeerInfo) -> None:
        try:
            await self._handler(channel, peer)
        except Exception:
            logger.exception("MQTT session of %s failed", board.device_id or board.client_id)
        finally:
            channel.lost("session ended")
            if board.channel is channel:
                board.channel = None

    async def wait_sessions(self) -> None:
        """Wait for every running session to end (tests)."""
        tasks = [b.task for b in self.boards.values() if b.task is not None]
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
