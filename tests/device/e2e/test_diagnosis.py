"""Set-up mistakes are diagnosed at once, with what to change (issue 13): the CLI as a subprocess
against plain sockets on port 0."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from tests.device.cli_process import run_cli

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def tcp_server(handler: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def websocket_port_like_the_library(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """What a bare ``websockets`` server does: a POST gets no answer, a GET gets 426."""
    head = await reader.readuntil(b"\r\n\r\n")
    if head.startswith(b"GET"):
        text = b"You cannot access a WebSocket server directly with a browser.\n"
        writer.write(
            b"HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(text), text)
        )
        await writer.drain()
    writer.close()


async def websocket_port_that_names_the_ota_url(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """What xiaozhi-server's WebSocket port answers to plain HTTP of any method."""
    await reader.readuntil(b"\r\n\r\n")
    text = (
        b"this is the xiaozhi WebSocket port; the OTA/config URL is "
        b"http://127.0.0.1:8003/xiaozhi/ota/\n"
    )
    writer.write(
        b"HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(text), text)
    )
    await writer.drain()
    writer.close()


async def not_found(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    await writer.drain()
    writer.close()


@pytest.fixture
def state(tmp_path: Path) -> list[str]:
    return ["--state", str(tmp_path / "state.json"), "--json"]


@pytest.mark.parametrize(
    ("handler", "advice"),
    [
        (websocket_port_like_the_library, "http://HOST:8003/xiaozhi/ota/"),
        (websocket_port_that_names_the_ota_url, "use --ota-url http://127.0.0.1:8003/xiaozhi/ota/"),
    ],
)
async def test_ota_url_on_a_websocket_port_exits_at_once_saying_what_to_change(
    handler: Handler, advice: str, state: list[str]
) -> None:
    server, port = await tcp_server(handler)
    async with server:
        run = await run_cli(
            "--ota-url", f"http://127.0.0.1:{port}/xiaozhi/ota/", "--say", "hi", *state
        )
    assert run.code == 1, run.err
    assert "is a WebSocket port, not the OTA endpoint" in run.err and advice in run.err
    assert "retrying" not in run.err and "Traceback" not in run.err
    assert run.result()["code"] == "ota-wrong-port"
    assert run.seconds < 15


async def test_ota_url_with_a_wrong_path_is_a_404_diagnosis(state: list[str]) -> None:
    server, port = await tcp_server(not_found)
    async with server:
        run = await run_cli("--ota-url", f"http://127.0.0.1:{port}/ota/", "--say", "hi", *state)
    assert run.code == 1
    assert "answered 404 Not Found" in run.err and "/xiaozhi/ota/" in run.err
    assert run.result()["code"] == "ota-not-found"


async def test_refused_ports_exit_at_once(state: list[str]) -> None:
    server, port = await tcp_server(not_found)
    server.close()
    await server.wait_closed()  # nothing listens on `port` any more
    ota = await run_cli("--ota-url", f"http://127.0.0.1:{port}/xiaozhi/ota/", "--say", "hi", *state)
    assert ota.code == 1 and "connection refused" in ota.err
    assert ota.result()["code"] == "ota-unreachable"
    ws = await run_cli("--ws-url", f"ws://127.0.0.1:{port}/xiaozhi/v1/", "--say", "hi", *state)
    assert ws.code == 1 and "connection refused" in ws.err
    assert len(ota.err.strip().splitlines()) == len(ws.err.strip().splitlines()) == 1
    assert ws.result()["code"] == "channel-failed"
    assert ota.seconds < 15 and ws.seconds < 15


@pytest.fixture
async def websocket_server() -> AsyncIterator[int]:
    """A WebSocket server whose only path is /xiaozhi/v1/ (anything else: 404)."""

    def only_our_path(conn: ServerConnection, request: Request) -> Response | None:
        if request.path != "/xiaozhi/v1/":
            return conn.respond(404, "no such path\n")
        return None

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, process_request=only_our_path) as server:
        yield server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def test_wrong_websocket_path_exits_at_once_not_after_the_mic_timeout(
    websocket_server: int, state: list[str]
) -> None:
    url = f"ws://127.0.0.1:{websocket_server}/wrong/"
    run = await run_cli("--ws-url", url, "--say", "hi", *state)
    assert run.code == 1
    assert "404" in run.err and "wrong path" in run.err and "/xiaozhi/v1/" in run.err
    assert len(run.err.strip().splitlines()) == 1  # one message, said once
    assert run.result()["code"] == "channel-failed"
    assert run.seconds < 15  # the mic timeout is 30 s
