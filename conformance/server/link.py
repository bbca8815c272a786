"""One board-like WebSocket connection to the server under test, recording everything.

It is the project's board client: the upgrade request, headers and hello are the firmware's
(:mod:`protocol.handshake`, shared with the simulator), framing is
:class:`~device.wsclient.RawWebSocket` (masked frames, pings answered with pongs, no pings of its
own, hang-up without a Close frame). This module only adds what a measuring instrument needs: the
server's handshake answer, every event with its arrival time, received pings, and answers to the
server's MCP requests from :class:`~conformance.server.device_mcp.DeviceMcpServer`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

from conformance.server.device_mcp import DeviceMcpServer
from conformance.server.records import Event, SessionRecord
from device.identity import DeviceIdentity
from device.tls import client_context
from device.wsclient import RawWebSocket, WsClosed, WsError
from protocol.binary import encode_frame
from protocol.handshake import device_hello, upgrade_headers, upgrade_request
from protocol.messages import DeviceMcp, encode_message

DEVICE_ID: Final = "a0:b7:65:12:34:56"
CLIENT_ID: Final = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
BOARD: Final = "bread-compact-wifi"
FIRMWARE: Final = "2.4.2"
_WS_GUID: Final = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def board_identity(version: int = 1, token: str | None = None) -> DeviceIdentity:
    """The suite's board: fixed MAC/UUID, firmware 2.4.2, binary protocol ``version``."""
    websocket: dict[str, str | int | float] = {"version": version}
    if token:
        websocket["token"] = token
    return DeviceIdentity(
        mac=DEVICE_ID, uuid=CLIENT_ID, board_name=BOARD, firmware_version=FIRMWARE,
        websocket=websocket,
    )  # fmt: skip


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``key`` (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()


class DeviceLink:
    """A recording board connection; ``await link.open()`` does handshake + hello."""

    def __init__(
        self, record: SessionRecord, *, token: str | None, hello_timeout_s: float = 10.0
    ) -> None:
        self.record = record
        self.token = token
        self.hello_timeout_s = hello_timeout_s
        self.mcp = DeviceMcpServer()
        self.session_id = ""
        self._ws: RawWebSocket | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ connection

    async def _handshake(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        rec = self.record
        parts = urlsplit(rec.url)
        tls = client_context() if parts.scheme == "wss" else None
        headers = upgrade_headers(
            device_id=DEVICE_ID, client_id=CLIENT_ID, protocol_version=rec.version, token=self.token
        )
        rec.request_headers = dict(headers)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        try:
            async with asyncio.timeout(10.0):
                reader, writer = await asyncio.open_connection(
                    parts.hostname, parts.port or (443 if tls else 80), ssl=tls
                )
                writer.write(upgrade_request(rec.url, headers, key))
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
            rec.connect_error = f"{type(exc).__name__}: {exc}"
            return None
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ", 2)
        rec.status_code = int(status[1]) if len(status) > 1 and status[1].isdigit() else None
        rec.reason = status[2] if len(status) > 2 else ""
        rec.response_headers = {
            k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
        }
        accept = {k.lower(): v for k, v in rec.response_headers.items()}.get("sec-websocket-accept")
        if rec.status_code != 101 or not lines[0].startswith("HTTP/1.1 "):
            rec.connect_error = f"handshake refused: {lines[0]}"
        elif accept != accept_key(key):
            rec.connect_error = f"wrong Sec-WebSocket-Accept {accept!r}"
        if rec.connect_error:
            writer.close()
            return None
        return reader, writer

    async def open(self) -> bool:
        """Connect and say hello; True once a server hello arrived within the timeout."""
        rec = self.record
        streams = await self._handshake()
        if streams is None:
            return False
        self._writer = streams[1]
        self._ws = RawWebSocket(*streams)
        self._ws.on_ping = lambda data: self._add(
            Event(time.monotonic(), "in", "ping", size=len(data))
        )
        self._reader = asyncio.create_task(self._read(self._ws))
        await self.send_text(encode_message(device_hello(FIRMWARE, rec.version)))
        rec.t_hello_sent = time.monotonic()
        return await self.wait_until(lambda: rec.server_hello is not None, self.hello_timeout_s)

    async def drop(self, *, reset: bool = False) -> None:
        """Hang up like a board: TCP close without a WebSocket Close frame (``reset``: RST)."""
        if self._ws is not None and self.record.t_closed is None:
            self.record.closed_by = "client"
            self.record.t_closed = time.monotonic()
            if reset and self._writer is not None:
                self._ws.closed = True
                self._writer.transport.abort()
            else:
                self._ws.abort()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, 2.0)
            if not self._reader.done():
                self._reader.cancel()

    @property
    def closed(self) -> bool:
        return self.record.t_closed is not None

    # ------------------------------------------------------------------ I/O

    def _add(self, event: Event) -> None:
        self.record.events.append(event)
        self._changed.set()

    async def _read(self, ws: RawWebSocket) -> None:
        try:
            while True:
                message = await ws.recv()
                now = time.monotonic()
                if isinstance(message, bytes):
                    self._add(Event(now, "in", "binary", data=message, size=len(message)))
                    continue
                event = Event(now, "in", "text", text=message, size=len(message))
                self._add(event)
                obj = event.obj
                if obj and obj.get("type") == "hello" and isinstance(obj.get("session_id"), str):
                    self.session_id = obj["session_id"]  # a board stores it at once
                if obj and obj.get("type") == "mcp":
                    await self._answer_mcp(obj.get("payload"))
        except (WsClosed, WsError):
            pass
        finally:
            if self.record.t_closed is None:
                self.record.t_closed = time.monotonic()
                self.record.closed_by = "server"
                self.record.close_code = ws.close_code if ws.close_code is not None else 1006
                self._add(Event(self.record.t_closed, "in", "close", size=0))
            self._changed.set()

    async def _answer_mcp(self, payload: Any) -> None:
        reply = self.mcp.handle(payload)
        if reply is not None:
            await self.send_text(
                encode_message(DeviceMcp(session_id=self.session_id, payload=reply))
            )

    async def send_text(self, text: str) -> bool:
        if self._ws is None or self.closed:
            return False
        try:
            await self._ws.send_text(text)
        except (WsClosed, WsError):
            return False
        self._add(Event(time.monotonic(), "out", "text", text=text, size=len(text)))
        return True

    async def send_audio(self, packet: bytes) -> bool:
        if self._ws is None or self.closed:
            return False
        try:
            await self._ws.send_binary(encode_frame(packet, self.record.version))
        except (WsClosed, WsError):
            return False
        self.record.events.append(Event(time.monotonic(), "out", "binary", size=len(packet)))
        return True

    def msg(self, **fields: Any) -> str:
        """A device JSON message, ``session_id`` first, no spaces (as the firmware builds it)."""
        return json.dumps(
            {"session_id": self.session_id, **fields}, separators=(",", ":"), ensure_ascii=False
        )

    async def wait_until(self, pred: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``pred()`` holds (re-checked on every received event) or the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not pred():
            remaining = deadline - loop.time()
            if remaining <= 0 or (self.closed and not pred()):
                return pred()
            self._changed.clear()
            if pred():
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True
