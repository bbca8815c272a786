"""``xiaozhi-conformance server`` against our own server (real providers, loopback ports)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.cli import main
from server.app import Server
from server.config import load_settings


@pytest.fixture
def our_server(tmp_path: Path) -> Iterator[Server]:
    """Our server on free 127.0.0.1 ports, running in its own event loop thread."""
    settings = load_settings(
        websocket={"host": "127.0.0.1", "port": 0},
        ota={"host": "127.0.0.1", "port": 0, "db_path": tmp_path / "devices.sqlite3"},
    )
    server = Server(settings)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=120)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def test_our_server_passes_every_applicable_item(
    our_server: Server, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ws = f"ws://127.0.0.1:{our_server.ws_port}/xiaozhi/v1/"
    ota = f"http://127.0.0.1:{our_server.http_port}/xiaozhi/ota/"
    junit = tmp_path / "junit.xml"
    code = main(["server", ws, "--ota-url", ota, "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "16 passed, 0 failed, 2 not applicable" in out
    assert 'failures="0"' in junit.read_text()
