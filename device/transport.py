"""The WebSocket audio channel of a board (``WebsocketProtocol``, protocol.md §3).

Opened lazily when a conversation starts: handshake with the firmware's headers, hello, wait
10 s for the server hello (``transport`` must be ``"websocket"``), keep ``session_id``, adopt the
downlink audio params. :meth:`is_open` applies the 120 s inactivity rule.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from device.identity import DeviceIdentity
from device.wsclient import RawWebSocket, WsClosed, WsError
from protocol.audio import AudioParams
from protocol.binary import decode_frame, encode_frame
from protocol.errors import BinaryFrameError
from protocol.messages import DeviceHello, Features, TextFont, WireModel, encode_message

logger = logging.getLogger(__name__)

JsonHandler = Callable[[dict[str, Any]], Awaitable[None]]
AudioHandler = Callable[[bytes], None]
ClosedHandler = Callable[[str], None]


def ws_headers(identity: DeviceIdentity) -> dict[str, str]:
    """Custom upgrade headers (sorted on the wire); Authorization only with a token."""
    headers = {
        "Client-Id": identity.uuid,
        "Device-Id": identity.mac,
        "Protocol-Version": str(identity.ws_version),
    }
    token = identity.websocket.get("token")
    if isinstance(token, str) and token:
        headers["Authorization"] = token if " " in token else f"Bearer {token}"
    return headers


def device_hello(
    version: int, *, glyph_push: bool = False, server_aec: bool = False, mcp: bool = True
) -> str:
    """The device hello of §3.3, exact key order. ``mcp`` False: a legacy-IoT build (≤ v1.7.x),
    whose hello has no ``features.mcp``."""
    features = Features(
        aec=True if server_aec else None, mcp=True if mcp else None, glyph_push=glyph_push
    )
    font = TextFont(bundle="noto-v1", charset="common", size=20, bpp=4) if glyph_push else None
    return encode_message(
        DeviceHello(version=version, features=features, text_font=font, audio_params=AudioParams())
    )


class WebsocketChannel:
    """One board's audio channel; a fresh socket per :meth:`open`."""

    def __init__(
        self,
        identity: DeviceIdentity,
        *,
        on_json: JsonHandler,
        on_audio: AudioHandler,
        on_closed: ClosedHandler,
        hello_timeout_s: float = 10.0,
        channel_timeout_s: float = 120.0,
        glyph_push: bool = False,
        server_aec: bool = False,
        mcp: bool = True,
    ) -> None:
        self.identity = identity
        self._on_json, self._on_audio, self._on_closed = on_json, on_audio, on_closed
        self.hello_timeout_s = hello_timeout_s
        self.channel_timeout_s = channel_timeout_s
        self.glyph_push, self.server_aec, self.mcp = glyph_push, server_aec, mcp
        self._ws: RawWebSocket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._hello: asyncio.Future[dict[str, Any]] | None = None
        self.last_incoming = 0.0
        self.version = 1
        self.server_sample_rate_hz = 24000
        self.server_frame_duration_ms = 60
        self.error: str | None = None

    @property
    def session_id(self) -> str:
        return self.identity.session_id

    def is_open(self) -> bool:
        """Socket connected and a server message within ``channel_timeout_s``."""
        if self._ws is None or self._ws.closed:
            return False
        age = time.monotonic() - self.last_incoming
        if age > self.channel_timeout_s:
            logger.info("channel timed out (%.1f s since last server message)", age)
            return False
        return True

    async def open(self) -> bool:
        """Connect, hello, wait for the server hello; False (with ``error``) on failure."""
        self.close(notify=False)
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
            logger.error("%s", exc)
            return False
        self._ws = ws
        self._hello = asyncio.get_running_loop().create_future()
        self.last_incoming = time.monotonic()
        self._reader = asyncio.create_task(self._read_loop(ws), name="device-ws-reader")
        try:
            await ws.send_text(
                device_hello(
                    self.version,
                    glyph_push=self.glyph_push,
                    server_aec=self.server_aec,
                    mcp=self.mcp,
                )
            )
            await asyncio.wait_for(asyncio.shield(self._hello), self.hello_timeout_s)
        except (TimeoutError, WsClosed) as exc:
            self.error = "server timeout" if isinstance(exc, TimeoutError) else str(exc)
            logger.error("no server hello: %s", self.error)
            self.close(notify=False)
            return False
        logger.info("channel open, session %r", self.identity.session_id)
        return True

    def _server_hello(self, msg: dict[str, Any]) -> None:
        transport = msg.get("transport")
        if not isinstance(transport, str):
            logger.error("server hello without a string transport: a real board would crash")
            return
        if transport != "websocket":
            logger.error("unsupported transport %r in server hello", transport)
            return
        sid = msg.get("session_id")
        if isinstance(sid, str):
            self.identity.session_id = sid
        params = msg.get("audio_params")
        rate, frame = 24000, 60
        if isinstance(params, dict):
            if isinstance(params.get("sample_rate"), int):
                rate = params["sample_rate"]
            if isinstance(params.get("frame_duration"), int):
                frame = params["frame_duration"]
        self.server_sample_rate_hz, self.server_frame_duration_ms = rate, frame
        if self._hello is not None and not self._hello.done():
            self._hello.set_result(msg)

    async def _read_loop(self, ws: RawWebSocket) -> None:
        reason = "closed"
        try:
            while True:
                data = await ws.recv()
                self.last_incoming = time.monotonic()
                if isinstance(data, bytes):
                    try:
                        frame = decode_frame(data, self.version)
                    except BinaryFrameError as exc:
                        logger.warning("bad downlink frame: %s", exc)
                        continue
                    self._on_audio(frame.payload)
                    continue
                try:
                    msg = json.loads(data)
                except ValueError:
                    logger.warning("ignoring non-JSON text message")
                    continue
                if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
                    logger.warning("ignoring message without a string type")
                    continue
                if msg["type"] == "hello":
                    self._server_hello(msg)
                    continue
                await self._on_json(msg)
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

    def close(self, *, notify: bool = False) -> None:
        """Drop TCP without a Close frame (``CloseAudioChannel``)."""
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.abort()
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if notify and ws is not None:
            self._on_closed("closed by device")
