"""A small raw WebSocket client that behaves like the firmware's (protocol.md §3.1–3.2).

Header order is the board's: ``Host`` (never with a port), then the rest sorted alphabetically.
Frames sent are masked, FIN=1, payload ≤ 65,535 bytes; fragments are reassembled; pings are
answered with pongs; the client never pings; closing drops TCP without a Close frame.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import struct
from collections.abc import Callable
from urllib.parse import urlsplit

from device.errors import ChannelError
from device.tls import client_context
from protocol.handshake import upgrade_request

logger = logging.getLogger(__name__)

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_SEND_PAYLOAD = 65535
MAX_MESSAGE_BYTES = 1 << 20


class WsError(ChannelError):
    """Connect/handshake failure, or a frame the client cannot send."""


class WsClosed(Exception):
    """The connection ended (server Close frame, TCP loss, or our own hang-up)."""


def refusal_message(url: str, head: bytes) -> str:
    """What to tell the user when the server answered the upgrade with something else."""
    status = head.split(b"\r\n", 1)[0].decode("latin-1", "replace").strip()
    hint = ""
    if " 404" in status:
        hint = (
            ": wrong path, or not the WebSocket port (xiaozhi-server serves "
            "ws://HOST:8000/xiaozhi/v1/; the OTA answer's websocket.url names the right URL)"
        )
    elif " 401" in status or " 403" in status:
        hint = ": the server wants a valid token (--token, or the OTA answer's websocket.token)"
    return f"WebSocket upgrade refused by {url}: {status}{hint}"


def _mask(data: bytes, key: bytes) -> bytes:
    n = len(data)
    if n == 0:
        return b""
    pad = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(pad, "big")).to_bytes(n, "big")


def encode_client_frame(opcode: int, payload: bytes, mask_key: bytes | None = None) -> bytes:
    """One masked FIN frame (7- or 16-bit length only, like the firmware)."""
    n = len(payload)
    if n > MAX_SEND_PAYLOAD:
        raise WsError(f"frame payload of {n} bytes exceeds the firmware's 65535-byte limit")
    key = mask_key if mask_key is not None else os.urandom(4)
    head = bytes([0x80 | opcode])
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
    return head + key + _mask(payload, key)


class RawWebSocket:
    """One open connection. ``recv()`` yields ``str`` (text) or ``bytes`` (binary) messages."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._send_lock = asyncio.Lock()
        self.closed = False
        self.close_code: int | None = None
        """Code of the server's Close frame (None: none received)."""
        self.on_ping: Callable[[bytes], None] | None = None
        """Called with each server ping's payload before the pong goes out (the suite counts)."""

    @classmethod
    async def connect(
        cls, url: str, headers: dict[str, str], *, timeout_s: float = 10.0
    ) -> RawWebSocket:
        """TCP(+TLS) connect and upgrade; accepts any response containing ``HTTP/1.1 101``."""
        parts = urlsplit(url)
        if not parts.hostname:
            raise WsError(f"bad WebSocket URL {url!r}")
        tls = client_context() if parts.scheme in ("wss", "https") else None
        port = parts.port or (443 if tls else 80)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(timeout_s):
                reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=tls)
                writer.write(upgrade_request(url, headers, key))
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError as exc:
            if writer is not None:
                writer.close()
            raise WsError(f"WebSocket handshake with {url} timed out after {timeout_s} s") from exc
        except ConnectionRefusedError as exc:
            raise WsError(
                f"cannot connect to {url}: connection refused (nothing listens on port {port}; "
                "is the server running, and is this its WebSocket port?)"
            ) from exc
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            if writer is not None:
                writer.close()
            raise WsError(f"cannot connect to {url}: {exc}") from exc
        if b"HTTP/1.1 101" not in head:
            writer.close()
            raise WsError(refusal_message(url, head))
        return cls(reader, writer)

    async def _send(self, opcode: int, payload: bytes) -> None:
        if self.closed:
            raise WsClosed("connection is closed")
        frame = encode_client_frame(opcode, payload)
        async with self._send_lock:
            try:
                self._writer.write(frame)
                await self._writer.drain()
            except (OSError, RuntimeError) as exc:
                self.closed = True
                raise WsClosed(f"send failed: {exc}") from exc

    async def send_text(self, text: str) -> None:
        await self._send(OP_TEXT, text.encode("utf-8"))

    async def send_binary(self, data: bytes) -> None:
        await self._send(OP_BINARY, data)

    async def _read_frame(self) -> tuple[bool, int, bytes]:
        b0, b1 = await self._reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack(">H", await self._reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack(">Q", await self._reader.readexactly(8))
        if n > MAX_MESSAGE_BYTES:
            raise WsClosed(f"frame of {n} bytes is too large")
        key = await self._reader.readexactly(4) if b1 & 0x80 else None
        payload = await self._reader.readexactly(n)
        return bool(b0 & 0x80), b0 & 0x0F, _mask(payload, key) if key else payload

    async def recv(self) -> str | bytes:
        """Next data message; raises :class:`WsClosed` on Close frame or TCP loss."""
        parts: list[bytes] = []
        message_op: int | None = None
        while True:
            try:
                fin, op, payload = await self._read_frame()
            except (asyncio.IncompleteReadError, OSError) as exc:
                self.closed = True
                raise WsClosed(f"connection lost: {exc}") from exc
            if op == OP_PING:
                if self.on_ping is not None:
                    self.on_ping(payload)
                with contextlib.suppress(WsClosed):
                    await self._send(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                self.closed = True
                self._writer.close()  # no Close frame echoed, as the firmware
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                self.close_code = code
                raise WsClosed(f"server sent Close (code {code})")
            if op in (OP_TEXT, OP_BINARY):
                message_op, parts = op, [payload]
            elif op == OP_CONT and message_op is not None:
                parts.append(payload)
                if sum(map(len, parts)) > MAX_MESSAGE_BYTES:
                    raise WsClosed("fragmented message too large")
            else:
                logger.warning("ignoring unexpected frame opcode %#x", op)
                continue
            if fin:
                data = b"".join(parts)
                if message_op == OP_TEXT:
                    return data.decode("utf-8", "replace")
                return data

    def abort(self) -> None:
        """Hang up like ``CloseAudioChannel``: TCP FIN, no WebSocket Close frame."""
        if not self.closed:
            self.closed = True
            self._writer.close()
