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
from tests.timing import scaled

IDLE_CLOSE_S = 3.0
"""Our server's idle timeout in this test (120 s in production), so item 15 is measured fast."""


@pytest.fixture
def our_server(tmp_path: Path) -> Iterator[Server]:
    """Our server on free 127.0.0.1 ports, running in its own event loop thread."""
    settings = load_settings(
        websocket={"host": "127.0.0.1", "port": 0, "idle_timeout_s": IDLE_CLOSE_S},
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
    idle = ["--idle-limit", str(IDLE_CLOSE_S), "--idle-wait", str(scaled(IDLE_CLOSE_S + 5))]
    code = main(["server", ws, "--ota-url", ota, "--junit", str(junit), *idle])
    out = capsys.readouterr().out
    assert code == 0, out
    # N/A: 18 (no MQTT) and 20 (our server does not greet on listen detect)
    assert "18 passed, 0 failed, 2 not applicable" in out, out
    assert "N/A  20 [protocol]" in out and "does not greet" in out
    assert "0 server pings" in out and "idle session closed 3." in out
    assert 'failures="0"' in junit.read_text()
