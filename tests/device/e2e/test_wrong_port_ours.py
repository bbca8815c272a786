"""Both sides of the classic mistake with our own server: the board's OTA URL on the WebSocket
port. The server answers plain HTTP there with where OTA lives; the simulator quotes it."""

from __future__ import annotations

from pathlib import Path

from server.app import Server
from server.config import load_settings
from tests.device.cli_process import run_cli


async def test_ota_url_on_our_websocket_port_names_the_real_ota_url(tmp_path: Path) -> None:
    settings = load_settings(
        websocket={"host": "127.0.0.1", "port": 0},
        ota={"host": "127.0.0.1", "port": 0, "db_path": tmp_path / "devices.sqlite3"},
    )
    server = Server(settings)
    await server.start()
    try:
        wrong = f"http://127.0.0.1:{server.ws_port}/xiaozhi/ota/"
        run = await run_cli(
            "--ota-url", wrong, "--say", "hi", "--json", "--state", str(tmp_path / "s.json")
        )
    finally:
        await server.stop()
    assert run.code == 1
    assert f"{wrong} is a WebSocket port, not the OTA endpoint" in run.err
    assert f"use --ota-url http://127.0.0.1:{server.http_port}/xiaozhi/ota/" in run.err
    assert run.result()["code"] == "ota-wrong-port"
