"""The MQTT + UDP channel of a board (``MqttProtocol``, protocol.md §4), same face as
:class:`device.transport.WebsocketChannel`.

* MQTT connects at boot (:meth:`MqttChannel.connect`) with the ``mqtt`` NVS values from the OTA
  answer (TLS if and only if the port is 8883) and stays up; **it never subscribes**: every
  PUBLISH the server delivers is processed, whatever its topic. Everything goes out on
  ``publish_topic``, QoS 0.
* :meth:`open` (a conversation starts) clears ``session_id``, publishes the hello (``version``
  3, ``transport`` ``udp``) and waits 10 s for a server hello with ``transport`` ``udp`` and a
  valid ``udp`` section (server, port 1–65535, 16-byte hex key and nonce); then a UDP socket is
  connected to it and both sequence counters restart at 0.
* The datagrams themselves (AES-128-CTR with the header as counter, sequence rules, the
  downlink checks) are :class:`device.udp_link.UdpLink`, one per audio channel.
* :meth:`close` publishes ``goodbye`` with the session id; a server ``goodbye`` carrying the
  current session id closes the audio channel without answering.
* When MQTT drops, a one-shot timer reconnects after ``reconnect_s`` (60 s) only if the board is
  idle then (``is_idle``); otherwise the next conversation reconnects on demand.
* ``udp_loss``/``udp_reorder`` lose or swap uplink datagrams on purpose (seeded, repeatable).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiomqtt

from device.identity import DeviceIdentity
from device.transport import AudioHandler, ClosedHandler, MessageHandler, ReadyHandler
from device.udp_link import UdpLink
from protocol import udp
from protocol.errors import MessageError
from protocol.handshake import hello_features
from protocol.messages import (
    ServerGoodbye,
    ServerHello,
    WireModel,
    decode_server_message,
    encode_message,
)

logger = logging.getLogger(__name__)

TLS_PORT = 8883
RECONNECT_S = 60.0
"""``MQTT_RECONNECT_INTERVAL_MS``: the one-shot reconnect timer after a disconnect."""
MQTT_HELLO_VERSION = 3
"""Hard-coded in the firmware's MQTT hello; says nothing about the (raw Opus) UDP framing."""


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, channel: MqttChannel) -> None:
        self.channel = channel

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.channel._datagram(data)

    def error_received(self, exc: Exception) -> None:
        logger.debug("UDP error: %s", exc)


class MqttChannel:
    """One board's MQTT connection and, per conversation, its UDP audio channel."""

    def __init__(
        self,
        identity: DeviceIdentity,
        *,
        on_message: MessageHandler,
        on_audio: AudioHandler,
        on_closed: ClosedHandler,
        on_ready: ReadyHandler | None = None,
        hello_timeout_s: float = 10.0,
        glyph_push: bool = False,
        server_aec: bool = False,
        legacy_iot: bool = False,
        udp_loss: float = 0.0,
        udp_reorder: float = 0.0,
        seed: int = 0,
        is_idle: Callable[[], bool] | None = None,
        reconnect_s: float = RECONNECT_S,
    ) -> None:
        self.identity = identity
        self._on_message, self._on_audio, self._on_closed = on_message, on_audio, on_closed
        self._on_ready = on_ready
        self.hello_timeout_s = hello_timeout_s
        self.glyph_push, self.server_aec, self.legacy_iot = glyph_push, server_aec, legacy_iot
        self.udp_loss, self.udp_reorder = udp_loss, udp_reorder
        self.is_idle, self.reconnect_s = is_idle, reconnect_s
        self._reconnect: asyncio.TimerHandle | None = None
        self._rng = random.Random(seed)
        self._mqtt: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None
        self._hello: asyncio.Future[ServerHello] | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self.link: UdpLink | None = None
        """The current audio channel's datagram logic (from the last server hello)."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self.counts: Counter[str] = Counter()
        """Of every audio channel so far, by code (see :class:`UdpLink`)."""
        self.version = 1
        self.server_sample_rate_hz = 24000
        self.server_frame_duration_ms = 60
        self.error: str | None = None
        self._key_override: bytes | None = None

    @property
    def key_override(self) -> bytes | None:
        """Tests: encrypt/decrypt with this key instead of the server's (a wrong key)."""
        return self._key_override

    @key_override.setter
    def key_override(self, key: bytes | None) -> None:
        self._key_override = key
        if self.link is not None:
            self.link.key_override = key

    # ------------------------------------------------------------------ MQTT
    @property
    def mqtt_connected(self) -> bool:
        return self._mqtt is not None and self._reader is not None and not self._reader.done()

    @property
    def connected(self) -> bool:
        """The audio channel is open (UDP set up after a server hello)."""
        return self._udp is not None

    def _setting(self, name: str) -> str:
        value = self.identity.mqtt.get(name)
        return str(value) if value is not None else ""

    async def connect(self) -> bool:
        """CONNECT with the NVS values (no SUBSCRIBE); False (with ``error``) on failure."""
        await self._disconnect()
        endpoint = self._setting("endpoint")
        if not endpoint:
            self.error = "server not found (no mqtt endpoint configured)"
            return False
        host, _, port_text = endpoint.partition(":")
        port = int(port_text) if port_text.isdigit() else TLS_PORT
        keepalive = self.identity.mqtt.get("keepalive", 240)
        client = aiomqtt.Client(
            host,
            port,
            identifier=self._setting("client_id"),
            username=self._setting("username") or None,
            password=self._setting("password") or None,
            keepalive=int(keepalive) if isinstance(keepalive, int | float) else 240,
            tls_context=ssl.create_default_context() if port == TLS_PORT else None,
            timeout=10,
        )
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            self.error = f"cannot connect to MQTT {host}:{port}: {exc}"
            logger.info("%s", self.error)  # reported once, by whoever drives the board
            return False
        self._mqtt = client
        self._cancel_reconnect()
        self._reader = asyncio.create_task(self._read_loop(client), name="device-mqtt-reader")
        logger.info("MQTT connected to %s:%d as %s", host, port, self._setting("client_id"))
        return True

    async def _disconnect(self) -> None:
        client, self._mqtt = self._mqtt, None
        self._cancel_reconnect()
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)

    async def _publish(self, text: str) -> bool:
        topic = self._setting("publish_topic")
        if self._mqtt is None or not topic:
            return False
        try:
            await self._mqtt.publish(topic, text.encode("utf-8"), qos=0, retain=False)
        except aiomqtt.MqttError as exc:
            logger.error("publish failed: %s", exc)
            return False
        return True

    async def _read_loop(self, client: aiomqtt.Client) -> None:
        try:
            async for message in client.messages:
                payload = message.payload
                data = payload if isinstance(payload, bytes | bytearray) else str(payload).encode()
                await self._incoming(bytes(data))
        except aiomqtt.MqttError as exc:
            logger.info("MQTT disconnected: %s", exc)
        if self._mqtt is client:
            self._mqtt = None
            self._cancel_reconnect()
            loop = asyncio.get_running_loop()
            self._reconnect = loop.call_later(self.reconnect_s, self._reconnect_if_idle)
            if self._hello is not None and not self._hello.done():
                self._hello.set_exception(ConnectionError("MQTT disconnected"))
            if self._udp is not None:
                self._close_udp()
                self._on_closed("MQTT disconnected")

    def _cancel_reconnect(self) -> None:
        if self._reconnect is not None:
            self._reconnect.cancel()
            self._reconnect = None

    def _reconnect_if_idle(self) -> None:
        self._reconnect = None
        if self.mqtt_connected or (self.is_idle is not None and not self.is_idle()):
            return
        logger.info("reconnecting to MQTT")
        task = asyncio.get_running_loop().create_task(self.connect())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _incoming(self, data: bytes) -> None:
        try:
            msg = decode_server_message(data)
        except MessageError as exc:
            logger.warning("ignoring server message (%s): %s", exc.code, exc)
            return
        if isinstance(msg, ServerHello):
            self._server_hello(msg)
        elif isinstance(msg, ServerGoodbye):
            if msg.session_id and msg.session_id == self.identity.session_id and self.connected:
                logger.info("server goodbye: audio channel closed")
                self._close_udp()
                self._on_closed("server goodbye")
        else:
            await self._on_message(msg)

    # ------------------------------------------------------------------ audio channel
    def hello_text(self) -> str:
        features = hello_features(
            self.identity.firmware_version,
            legacy_iot=self.legacy_iot,
            glyph_push=self.glyph_push,
            server_aec=self.server_aec,
        )
        hello: dict[str, Any] = {
            "type": "hello",
            "version": MQTT_HELLO_VERSION,
            "transport": "udp",
            "features": features.model_dump(exclude_none=True),
            "audio_params": {
                "format": "opus",
                "sample_rate": 16000,
                "channels": 1,
                "frame_duration": 60,
            },
        }
        return json.dumps(hello, separators=(",", ":"))

    async def open(self) -> bool:
        """Hello over MQTT, wait for the ``udp`` answer, connect UDP; False with ``error``."""
        self._close_udp()
        if not self.mqtt_connected and not await self.connect():
            return False
        self.error = None
        self.identity.session_id = ""
        self._hello = asyncio.get_running_loop().create_future()
        try:
            if not await self._publish(self.hello_text()):
                raise ConnectionError("hello not published")
            hello = await asyncio.wait_for(asyncio.shield(self._hello), self.hello_timeout_s)
            assert hello.udp is not None
            loop = asyncio.get_running_loop()
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self), remote_addr=(hello.udp.server, hello.udp.port)
            )
        except (TimeoutError, ConnectionError, OSError) as exc:
            self.error = "server timeout" if isinstance(exc, TimeoutError) else str(exc)
            logger.info("no audio channel: %s", self.error)
            self._close_udp()
            return False
        logger.info("audio channel open, session %r", self.identity.session_id)
        if self._on_ready is not None:
            self._on_ready()
        return True

    def _server_hello(self, msg: ServerHello) -> None:
        if msg.transport != "udp" or msg.udp is None:
            logger.error("server hello without transport udp and a udp section; ignored")
            return
        try:
            keys = udp.UdpKeys.from_hex(msg.udp.key, msg.udp.nonce)
        except udp.InvalidKeyMaterial as exc:
            logger.error("invalid udp key/nonce: %s", exc)
            return
        if msg.session_id is not None:
            self.identity.session_id = msg.session_id
        params = msg.audio_params
        given = params.model_fields_set if params is not None else set()
        self.server_sample_rate_hz = (
            params.sample_rate if params and "sample_rate" in given else 24000
        )
        self.server_frame_duration_ms = (
            params.frame_duration if params and "frame_duration" in given else 60
        )
        self.link = UdpLink(
            keys, loss=self.udp_loss, reorder=self.udp_reorder, rng=self._rng, counts=self.counts
        )
        self.link.key_override = self._key_override
        if self._hello is not None and not self._hello.done():
            self._hello.set_result(msg)

    def _datagram(self, data: bytes) -> None:
        if self.link is None:
            return
        payload = self.link.downlink(data, self.server_frame_duration_ms)
        if payload is not None:
            self._on_audio(payload)

    async def send_json(self, message: WireModel | str) -> bool:
        text = message if isinstance(message, str) else encode_message(message)
        return await self._publish(text)

    async def send_audio(self, packet: bytes) -> bool:
        link, transport = self.link, self._udp
        if link is None or transport is None:
            return False
        for datagram in link.uplink(packet):
            transport.sendto(datagram)
        return True

    def _close_udp(self) -> None:
        transport, self._udp = self._udp, None
        if transport is not None:
            transport.close()

    def close(self) -> None:
        """``CloseAudioChannel(send_goodbye=true)``: UDP down, goodbye published."""
        was_open = self._udp is not None
        self._close_udp()
        if was_open and self.mqtt_connected:
            goodbye = json.dumps(
                {"session_id": self.identity.session_id, "type": "goodbye"}, separators=(",", ":")
            )
            task = asyncio.get_running_loop().create_task(self._publish(goodbye))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def shutdown(self) -> None:
        """Power off: close the audio channel (with goodbye), then MQTT."""
        self._cancel_reconnect()
        self.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._disconnect()
