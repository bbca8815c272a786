"""One board-like WebSocket connection to the server under test, recording everything.

Uses the ``websockets`` client with the firmware's handshake headers, no compression and no
pings of its own; received pings are recorded (and answered, as a board does). MCP requests are
answered by :class:`~conformance.server_mcp.DeviceMcpServer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode

from conformance.server_mcp import DeviceMcpServer
from conformance.server_session import Event, SessionRecord
from protocol.audio import AudioParams
from protocol.binary import encode_frame
from protocol.messages import DeviceHello, DeviceMcp, Features, encode_message

logger = logging.getLogger(__name__)

DEVICE_ID = "a0:b7:65:12:34:56"
CLIENT_ID = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"


def device_hello(version: int) -> str:
    """The firmware's exact hello string for binary protocol ``version``."""
    hello = DeviceHello(
        version=version,
        features=Features(mcp=True, glyph_push=False),
        transport="websocket",
        audio_params=AudioParams(),
    )
    return encode_message(hello)


def handshake_headers(version: int, token: str | None) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    if token:
        headers.append(("Authorization", token if " " in token else f"Bearer {token}"))
    headers += [
        ("Client-Id", CLIENT_ID),
        ("Device-Id", DEVICE_ID),
        ("Protocol-Version", str(version)),
    ]
    return headers


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
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ connection

    async def open(self) -> bool:
        """Connect and say hello; True once a server hello arrived within the timeout."""
        rec = self.record
        headers = handshake_headers(rec.version, self.token)
        rec.request_headers = dict(headers)
        link = self

        class _Conn(ClientConnection):
            def process_event(self, event: Any) -> None:
                if isinstance(event, Frame) and event.opcode is Opcode.PING:
                    link._add(Event(time.monotonic(), "in", "ping", size=len(event.data)))
                super().process_event(event)

        try:
            self._ws = await connect(
                rec.url,
                additional_headers=headers,
                compression=None,
                ping_interval=None,
                user_agent_header=None,
                open_timeout=10,
                max_size=2**20,
                proxy=None,
                create_connection=_Conn,
            )
        except InvalidStatus as exc:
            rec.status_code = exc.response.status_code
            rec.reason = exc.response.reason_phrase
            rec.response_headers = dict(exc.response.headers.raw_items())
            rec.connect_error = f"handshake refused: HTTP {exc.response.status_code}"
            return False
        except Exception as exc:  # any failure to connect is evidence, not a crash
            rec.connect_error = f"{type(exc).__name__}: {exc}"
            return False
        response = self._ws.response
        assert response is not None
        rec.status_code = response.status_code
        rec.reason = response.reason_phrase
        rec.response_headers = dict(response.headers.raw_items())
        rec.subprotocol = self._ws.subprotocol
        self._reader = asyncio.create_task(self._read())
        await self.send_text(device_hello(rec.version))
        rec.t_hello_sent = time.monotonic()
        ok = await self.wait_until(lambda: rec.server_hello is not None, self.hello_timeout_s)
        return ok

    async def drop(self, *, reset: bool = False) -> None:
        """Hang up like a board: TCP close without a WebSocket Close frame (``reset``: abort)."""
        if self._ws is not None and self.record.t_closed is None:
            transport = self._ws.transport
            self.record.closed_by = "client"
            self.record.t_closed = time.monotonic()
            if reset:
                transport.abort()
            else:
                transport.close()
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

    async def _read(self) -> None:
        assert self._ws is not None
        ws = self._ws
        try:
            async for message in ws:
                now = time.monotonic()
                if isinstance(message, str):
                    event = Event(now, "in", "text", text=message, size=len(message))
                    self._add(event)
                    obj = event.obj
                    if (
                        obj
                        and obj.get("type") == "hello"
                        and isinstance(obj.get("session_id"), str)
                    ):
                        self.session_id = obj["session_id"]  # a board stores it at once
                    if obj and obj.get("type") == "mcp":
                        await self._answer_mcp(obj.get("payload"))
                else:
                    self._add(Event(now, "in", "binary", data=bytes(message), size=len(message)))
        except ConnectionClosed:
            pass
        finally:
            if self.record.t_closed is None:
                self.record.t_closed = time.monotonic()
                self.record.closed_by = "server"
                rcvd = ws.protocol.close_rcvd
                self.record.close_code = rcvd.code if rcvd is not None else 1006
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
            await self._ws.send(text)
        except ConnectionClosed:
            return False
        self._add(Event(time.monotonic(), "out", "text", text=text, size=len(text)))
        return True

    async def send_audio(self, packet: bytes) -> bool:
        if self._ws is None or self.closed:
            return False
        try:
            await self._ws.send(encode_frame(packet, self.record.version))
        except ConnectionClosed:
            return False
        self.record.events.append(Event(time.monotonic(), "out", "binary", size=len(packet)))
        return True

    def msg(self, **fields: Any) -> str:
        """A device JSON message, ``session_id`` first, no spaces (as the firmware builds it)."""
        import json

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
