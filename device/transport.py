"""The WebSocket audio channel of a board (``WebsocketProtocol``, protocol.md §3).

Opened lazily when a conversation starts: handshake with the firmware's headers, the hello of
the simulated firmware version (:mod:`protocol.handshake`), wait 10 s for the server hello
(``transport`` must be ``"websocket"``), keep ``session_id``, adopt the downlink audio params.
Server text messages are decoded into typed messages (``decode_server_message``); anything a
board would ignore (unknown type, missing fields, non-JSON) is logged and dropped here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from device.identity import DeviceIdentity
from device.wsclient import RawWebSocket, WsClosed, WsError
from protocol.binary import decode_frame, encode_frame
from protocol.errors import BinaryFrameError, MessageError
from protocol.handshake import device_hello, upgrade_headers
from protocol.messages import (
    ServerHello,
    ServerMessage,
    WireModel,
    decode_server_message,
    encode_message,
)

logger = logging.getLogger(__name__)

MessageHandler = Callable[[ServerMessage], Awaitable[None]]
AudioHandler = Callable[[bytes], None]
ClosedHandler = Callable[[str], None]
ReadyHandler = Callable[[], None]


def ws_headers(identity: DeviceIdentity) -> dict[str, str]:
    """The board's custom upgrade headers; Authorization only with a token."""
    token = identity.websocket.get("token")
    return upgrade_headers(
        device_id=identity.mac,
        client_id=identity.uuid,
        protocol_version=identity.ws_version,
        token=token if isinstance(token, str) else None,
    )


async def _drop_message(message: ServerMessage) -> None:
    logger.debug("no handler bound; dropping %s", message.type)


class WebsocketChannel:
    """One board's audio channel; a fresh socket per :meth:`open`."""

    def __init__(
        self,
        identity: DeviceIdentity,
        *,
        on_message: MessageHandler | None = None,
        on_audio: AudioHandler | None = None,
        on_closed: ClosedHandler | None = None,
        on_ready: ReadyHandler | None = None,
        hello_timeout_s: float = 10.0,
        glyph_push: bool = False,
        server_aec: bool = False,
        legacy_iot: bool = False,
    ) -> None:
        self.identity = identity
        self._on_message: MessageHandler = on_message or _drop_message
        self._on_audio: AudioHandler = on_audio or (lambda payload: None)
        self._on_closed: ClosedHandler = on_closed or (lambda reason: None)
        self._on_ready = on_ready
        self.hello_timeout_s = hello_timeout_s
        self.glyph_push, self.server_aec, self.legacy_iot = glyph_push, server_aec, legacy_iot
        self._ws: RawWebSocket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._hello: asyncio.Future[ServerHello] | None = None
        self.version = 1
        self.server_sample_rate_hz = 24000
        self.server_frame_duration_ms = 60
        self.error: str | None = None

    def bind(
        self,
        *,
        on_message: MessageHandler,
        on_audio: AudioHandler,
        on_closed: ClosedHandler,
        on_ready: ReadyHandler,
    ) -> None:
        """Where received messages, audio, the close and the server hello go (the controller)."""
        self._on_message, self._on_audio, self._on_closed = on_message, on_audio, on_closed
        self._on_ready = on_ready

    def hello_text(self) -> str:
        """The device hello of this build (raises InvalidField for an impossible build)."""
        return encode_message(
            device_hello(
                self.identity.firmware_version,
                self.version,
                legacy_iot=self.legacy_iot,
                glyph_push=self.glyph_push,
                server_aec=self.server_aec,
            )
        )

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def open(self) -> bool:
        """Connect, hello, wait for the server hello; False (with ``error``) on failure."""
        self.close()
        url = self.identity.websocket.get("url")
        if not isinstance(url, str) or not url:
            self.error = "no websocket url configured"
            return False
        self.version = self.identity.ws_version
        self.error = None
        try:
            ws = await RawWebSocket.connect(url, ws_headers(self.identity))
        except WsError as exc:
            self.error = str(exc)
            logger.info("%s", exc)  # reported once, by whoever drives the board
            return False
        self._ws = ws
        self._hello = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read_loop(ws), name="device-ws-reader")
        try:
            await ws.send_text(self.hello_text())
            await asyncio.wait_for(asyncio.shield(self._hello), self.hello_timeout_s)
        except (TimeoutError, WsClosed) as exc:
            self.error = "server timeout" if isinstance(exc, TimeoutError) else str(exc)
            logger.info("no server hello: %s", self.error)
            self.close()
            return False
        logger.info("channel open, session %r", self.identity.session_id)
        return True

    def _server_hello(self, msg: ServerHello) -> None:
        if msg.transport != "websocket":
            logger.error("unsupported transport %r in server hello", msg.transport)
            return
        if msg.session_id is not None:
            self.identity.session_id = msg.session_id
        params = msg.audio_params  # the firmware's defaults for absent keys: 24000 Hz, 60 ms
        given = params.model_fields_set if params is not None else set()
        self.server_sample_rate_hz = (
            params.sample_rate if params and "sample_rate" in given else 24000
        )
        self.server_frame_duration_ms = (
            params.frame_duration if params and "frame_duration" in given else 60
        )
        if self._hello is not None and not self._hello.done():
            self._hello.set_result(msg)
            if self._on_ready is not None:  # before the reader hands on the next message
                self._on_ready()

    async def _read_loop(self, ws: RawWebSocket) -> None:
        reason = "closed"
        try:
            while True:
                data = await ws.recv()
                if isinstance(data, bytes):
                    try:
                        frame = decode_frame(data, self.version)
                    except BinaryFrameError as exc:
                        logger.warning("bad downlink frame: %s", exc)
                        continue
                    self._on_audio(frame.payload)
                    continue
                try:
                    msg = decode_server_message(data)
                except MessageError as exc:
                    logger.warning("ignoring server message (%s): %s", exc.code, exc)
                    continue
                if isinstance(msg, ServerHello):
                    self._server_hello(msg)
                    continue
                await self._on_message(msg)
        except WsClosed as exc:
            reason = str(exc)
        except Exception:
            logger.exception("channel reader failed")
            reason = "reader error"
        if self._ws is ws:
            self._ws = None
            if self._hello is not None and not self._hello.done():
                self._hello.set_exception(WsClosed(reason))
            logger.info("channel closed: %s", reason)
            self._on_closed(reason)

    async def send_json(self, message: WireModel | str) -> bool:
        """Send one text message (a model is encoded with the firmware's exact string)."""
        text = message if isinstance(message, str) else encode_message(message)
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send_text(text)
        except (WsClosed, WsError) as exc:
            logger.error("send failed: %s", exc)
            return False
        return True

    async def send_audio(self, packet: bytes) -> bool:
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send_binary(encode_frame(packet, self.version))
        except (WsClosed, WsError) as exc:
            logger.error("audio send failed: %s", exc)
            return False
        return True

    def close(self) -> None:
        """Drop TCP without a Close frame (``CloseAudioChannel``); no ``on_closed`` call."""
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.abort()
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
