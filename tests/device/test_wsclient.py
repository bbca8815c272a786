"""The raw WebSocket client: handshake bytes exact, framing rules, ping/pong, close behaviour."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from device.identity import DeviceIdentity
from device.transport import ws_headers
from device.wsclient import RawWebSocket, WsClosed, WsError, encode_client_frame

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


class RawServer:
    """A plain TCP server: records the raw request, answers per ``respond``."""

    def __init__(self) -> None:
        self.request = b""
        self.received = bytearray()
        self.eof = asyncio.Event()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.respond: Callable[[bytes], bytes] = self.ok
        self.ready = asyncio.Event()
        self.port = 0

    @staticmethod
    def ok(request: bytes) -> bytes:
        key = re.search(rb"Sec-WebSocket-Key: (\S+)", request)
        assert key is not None
        return (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept(key.group(1).decode())}\r\n\r\n"
        ).encode()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.request = await reader.readuntil(b"\r\n\r\n")
        self.reader, self.writer = reader, writer
        response = self.respond(self.request)
        if response:
            writer.write(response)
            await writer.drain()
        self.ready.set()
        while chunk := await reader.read(65536):
            self.received += chunk
        self.eof.set()

    async def _need(self, n: int) -> None:
        async with asyncio.timeout(3):
            for _ in range(1000):
                if len(self.received) >= n:
                    return
                await asyncio.sleep(0.005)

    async def read_frame(self) -> tuple[int, int, bool, bytes]:
        """(first byte, opcode, masked, unmasked payload) of the next client frame."""
        assert self.reader is not None
        await self._need(2)
        b0, b1 = self.received[0], self.received[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            await self._need(4)
            n, off = struct.unpack(">H", self.received[2:4])[0], 4
        masked = bool(b1 & 0x80)
        total = off + (4 if masked else 0) + n
        await self._need(total)
        frame = bytes(self.received[:total])
        del self.received[:total]
        key, data = (frame[off : off + 4], frame[off + 4 :]) if masked else (b"", frame[off:])
        payload = bytes(c ^ key[i % 4] for i, c in enumerate(data)) if masked else data
        return b0, b0 & 0x0F, masked, payload


@pytest.fixture
async def raw() -> AsyncIterator[RawServer]:
    srv = RawServer()
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    srv.port = server.sockets[0].getsockname()[1]
    yield srv
    server.close()


Connect = Callable[..., Awaitable[RawWebSocket]]


def identity(token: str | None, version: int = 1) -> DeviceIdentity:
    ident = DeviceIdentity(mac="a0:b7:65:12:34:56", uuid="6f1c2c1e-1d1b-4b8e-9a52-0c4d0a8c1f00")
    ident.websocket["version"] = version
    if token is not None:
        ident.websocket["token"] = token
    return ident


@pytest.mark.parametrize(
    ("token", "auth"),
    [
        ("abc", "Authorization: Bearer abc\r\n"),
        ("Token x y", "Authorization: Token x y\r\n"),
        (None, ""),
        ("", ""),
    ],
)
async def test_handshake_bytes_exact(raw: RawServer, token: str | None, auth: str) -> None:
    url = f"ws://127.0.0.1:{raw.port}/xiaozhi/v1/?a=1&b=2"
    ws = await RawWebSocket.connect(url, ws_headers(identity(token, version=3)))
    key = re.search(rb"Sec-WebSocket-Key: (\S+)", raw.request).group(1).decode()  # type: ignore[union-attr]
    assert len(base64.b64decode(key)) == 16
    expected = (
        "GET /xiaozhi/v1/?a=1&b=2 HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        f"{auth}"
        "Client-Id: 6f1c2c1e-1d1b-4b8e-9a52-0c4d0a8c1f00\r\n"
        "Connection: Upgrade\r\n"
        "Device-Id: a0:b7:65:12:34:56\r\n"
        "Protocol-Version: 3\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Upgrade: websocket\r\n\r\n"
    )
    assert raw.request.decode() == expected
    ws.abort()


async def test_path_defaults_to_slash(raw: RawServer) -> None:
    ws = await RawWebSocket.connect(f"ws://127.0.0.1:{raw.port}", {})
    assert raw.request.startswith(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    ws.abort()


async def test_only_http11_101_is_accepted(raw: RawServer) -> None:
    raw.respond = lambda req: b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
    with pytest.raises(WsError, match="403"):
        await RawWebSocket.connect(f"ws://127.0.0.1:{raw.port}/", {})


async def test_accept_header_is_not_verified(raw: RawServer) -> None:
    raw.respond = lambda req: b"HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: wrong\r\n\r\n"
    ws = await RawWebSocket.connect(f"ws://127.0.0.1:{raw.port}/", {})
    ws.abort()


async def test_handshake_timeout(raw: RawServer) -> None:
    raw.respond = lambda req: b""
    with pytest.raises(WsError, match="timed out"):
        await RawWebSocket.connect(f"ws://127.0.0.1:{raw.port}/", {}, timeout_s=0.3)


async def test_connect_refused_is_a_clear_error() -> None:
    with pytest.raises(WsError, match="cannot connect"):
        await RawWebSocket.connect("ws://127.0.0.1:1/", {})


async def test_frames_masked_fin_and_limits(raw: RawServer) -> None:
    ws = await RawWebSocket.connect(f"ws://127.0.0.1:{raw.port}/", {})
    await ws.send_text('{"type":"x"}')
    await ws.send_binary(b"\x01" * 300)
    b0, op, masked, payload = await raw.read_frame()
    assert (b0 & 0x80, op, masked, payload) == (0x80, 1, True, b'{"type":"x"}')
    b0, op, masked, payload = await raw.read_frame()
    assert (b0 & 0x80, op, masked, payload) == (0x80, 2, True, b"\x01" * 300)
    with pytest.raises(WsError, match="65535"):
        await ws.send_binary(b"\0" * 65536)
    assert len(encode_client_frame(2, b"\0" * 65535)) == 65535 + 8
    ws.abort()


async def test_fragments_reassembled_and_ping_answered(raw: RawServer) -> None:
    ws = await RawWebSocket.connect(f"ws://127.0.0.1:{raw.port}/", {})
    assert raw.writer is not None
    # text in 2 fragments with a ping between them; a 64-bit length binary
    raw.writer.write(b"\x01\x03abc" + b"\x89\x02hi" + b"\x80\x03def")
    raw.writer.write(b"\x82\x7f" + struct.pack(">Q", 5) + b"12345")
    assert await ws.recv() == "abcdef"
    assert await ws.recv() == b"12345"
    _, op, masked, payload = await raw.read_frame()
    assert (op, masked, payload) == (0xA, True, b"hi")
    ws.abort()


async def test_server_close_ends_without_echo_and_abort_sends_no_close(raw: RawServer) -> None:
    ws = await RawWebSocket.connect(f"ws://127.0.0.1:{raw.port}/", {})
    assert raw.writer is not None
    raw.writer.write(b"\x88\x02\x03\xe8")
    with pytest.raises(WsClosed, match="1000"):
        await ws.recv()
    await asyncio.wait_for(raw.eof.wait(), 2)
    assert raw.received == b""  # TCP closed, no Close frame echoed


async def test_device_hang_up_is_tcp_fin_only(raw: RawServer) -> None:
    ws = await RawWebSocket.connect(f"ws://127.0.0.1:{raw.port}/", {})
    await ws.send_text("{}")
    ws.abort()
    await asyncio.wait_for(raw.eof.wait(), 2)
    _, op, _, _ = await raw.read_frame()
    assert op == 1
    assert raw.received == b""
    with pytest.raises(WsClosed):
        await ws.send_text("{}")


async def test_tcp_loss_raises_closed(raw: RawServer) -> None:
    ws = await RawWebSocket.connect(f"ws://127.0.0.1:{raw.port}/", {})
    assert raw.writer is not None
    raw.writer.close()
    with pytest.raises(WsClosed, match="lost"):
        await ws.recv()
