"""Plain HTTP on the WebSocket port (OTA URL pointed at port 8000) is told where OTA lives."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from server.config import WebSocketSettings
from server.metrics import ServerMetrics
from server.transport.websocket import WebSocketServer
from tests.timing import scaled

from .firmware import system_info_json


@pytest.fixture
async def ws_port() -> AsyncIterator[tuple[WebSocketServer, ServerMetrics]]:
    async def session(channel: object, peer: object) -> None:
        return None

    metrics = ServerMetrics()
    server = WebSocketServer(
        WebSocketSettings(host="127.0.0.1", port=0),
        session,  # type: ignore[arg-type]
        ota_port=8003,
        ota_path="/xiaozhi/ota/",
        on_plain_http=metrics.plain_http_on_websocket_port,
    )
    await server.start()
    try:
        yield server, metrics
    finally:
        await server.close()


async def raw_request(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), scaled(10))
    finally:
        writer.close()


async def test_board_posting_its_ota_request_to_the_websocket_port(
    ws_port: tuple[WebSocketServer, ServerMetrics], caplog: pytest.LogCaptureFixture
) -> None:
    server, metrics = ws_port
    body = system_info_json()
    head = (
        f"POST /xiaozhi/ota/ HTTP/1.1\r\nHost: 192.168.1.10:{server.port}\r\n"
        "Content-Type: application/json\r\nDevice-Id: a0:b7:65:12:34:56\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with caplog.at_level(logging.INFO, logger="server.transport.wrong_port"):
        # the request arrives in two segments, as it may from a board
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(head.encode()[:7])
        await writer.drain()
        await asyncio.sleep(0)
        writer.write(head.encode()[7:] + body)
        raw = await asyncio.wait_for(reader.read(), scaled(10))
        writer.close()
        again = await raw_request(server.port, head.encode() + body)
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 426 Upgrade Required"
    text = rest.split(b"\r\n\r\n", 1)[1].decode()
    assert text.startswith(
        "this is the xiaozhi WebSocket port; the OTA/config URL is "
        "http://192.168.1.10:8003/xiaozhi/ota/"
    )
    assert b"X-Xiaozhi-Port: websocket" in rest
    assert again.startswith(b"HTTP/1.1 426")
    told = [r for r in caplog.records if "plain HTTP" in r.getMessage()]
    assert len(told) == 1  # once per remote address
    assert "POST" in told[0].getMessage() and told[0].levelno == logging.INFO
    assert "xiaozhi_plain_http_on_websocket_port_total 2.0" in metrics.render().decode()


async def test_browser_get_without_upgrade_gets_the_explanation(
    ws_port: tuple[WebSocketServer, ServerMetrics],
) -> None:
    server, _ = ws_port
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{server.port}/") as response,
    ):
        assert response.status == 426
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    assert "this is the xiaozhi WebSocket port" in text
    assert "http://127.0.0.1:8003/xiaozhi/ota/" in text
    assert f"ws://127.0.0.1:{server.port}/xiaozhi/v1/" in text


async def test_ota_port_set_after_start_is_used(
    ws_port: tuple[WebSocketServer, ServerMetrics],
) -> None:
    server, _ = ws_port
    server.ota_port = 18003  # the HTTP side bound later (port 0)
    raw = await raw_request(server.port, b"GET /xiaozhi/v1/ HTTP/1.1\r\nHost: box\r\n\r\n")
    assert b"http://box:18003/xiaozhi/ota/" in raw


async def test_wrong_websocket_path_is_a_clear_404(
    ws_port: tuple[WebSocketServer, ServerMetrics],
) -> None:
    server, _ = ws_port
    upgrade = (
        "GET /wrong/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    raw = await raw_request(server.port, upgrade.encode())
    assert raw.startswith(b"HTTP/1.1 404")
    assert b"no WebSocket endpoint at /wrong/; the xiaozhi WebSocket path is /xiaozhi/v1/" in raw


async def test_real_upgrade_still_works(ws_port: tuple[WebSocketServer, ServerMetrics]) -> None:
    server, metrics = ws_port
    from websockets.asyncio.client import connect

    async with connect(f"ws://127.0.0.1:{server.port}/xiaozhi/v1/") as ws:
        await ws.wait_closed()  # the test session handler returns at once
    assert "xiaozhi_plain_http_on_websocket_port_total 0.0" in metrics.render().decode()
