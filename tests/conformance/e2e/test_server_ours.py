"""``xiaozhi-conformance server`` against our own server (real providers, loopback ports)."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.audio import encode_pcm, silence_packets, synthesize
from conformance.cli import main
from conformance.server.link import DeviceLink
from conformance.server.records import SessionRecord
from conformance.server.turn_driver import TurnTimings, run_turn
from server.app import Server
from server.config import load_settings
from tests.timing import scaled

IDLE_CLOSE_S = 20.0
"""Our server's idle timeout in this test (120 s in production), so item 15 is measured within
the run (the idle session runs alongside the other phases, which take longer). Not much
shorter: a board sends nothing between listen stop and the answer, and on a loaded machine an
answer has taken over 8 s."""


async def _warm_up(ws_url: str) -> bool:
    """One answered turn before the suite runs. The server's first utterance warms up the
    recogniser, which stalled its event loop for 3.5-3.9 s here (every timer, the idle close
    included, fires that much late); the suite measures the steady state."""
    record = SessionRecord(label="warm-up", version=1, purpose="warm-up", url=ws_url)
    link = DeviceLink(record, token=None)
    if not await link.open():
        return False
    speech = encode_pcm(synthesize("what time is it"))
    turn = await run_turn(
        link,
        TurnTimings(answer_timeout_s=scaled(30)),
        "warm-up",
        "auto",
        speech,
        silence_packets(600),
    )
    await link.drop()
    return turn.answered


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
    assert asyncio.run(_warm_up(ws))
    # the suite's limit has 3 s of slack over our timeout: on this shared 2-core machine (load
    # 5-7 from parallel work) the server's idle timer has fired up to 1.5 s late
    limit = IDLE_CLOSE_S + scaled(3.0)
    idle = ["--idle-limit", f"{limit:g}", "--idle-wait", f"{limit + scaled(5.0):g}"]
    code = main(["server", ws, "--ota-url", ota, "--junit", str(junit), *idle])
    out = capsys.readouterr().out
    assert code == 0, out
    # N/A: 18 (no MQTT) and 20 (our server does not greet on listen detect)
    assert "18 passed, 0 failed, 2 not applicable" in out, out
    assert "N/A  20 [protocol]" in out and "does not greet" in out
    closed = re.search(r"idle session closed (\d+\.\d) s after the last server message", out)
    assert closed is not None and float(closed[1]) >= IDLE_CLOSE_S - 0.5, out
    assert "0 server pings" in out
    assert 'failures="0"' in junit.read_text()
