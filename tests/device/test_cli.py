"""The ``xiaozhi-device`` command end to end (subprocess) against the scripted check server."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from aiohttp import web

from conformance.device import DeviceCheckServer, HarnessConfig
from device.cli import main

pytestmark = pytest.mark.e2e  # subprocesses against real sockets


async def run_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "device",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_say_one_turn_json_events(tmp_path: Path) -> None:
    server = DeviceCheckServer(HarnessConfig(ota_failures=0, activation=False, paced_s=0.3))
    await server.start()
    try:
        code, out, err = await run_cli(
            "--ota-url",
            server.ota_url,
            "--say",
            "turn on the lamp",
            "--json",
            "--state",
            str(tmp_path / "state.json"),
            "--board",
            "my-board",
        )
    finally:
        await server.stop()
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    kinds = [e["event"] for e in events]
    assert {"state", "stt", "llm", "tts", "sentence_start", "turn"} <= set(kinds)
    turn = next(e for e in events if e["event"] == "turn")
    assert turn["stt"] == "conformance check" and turn["stale_frames"] == 0
    states = [e["new"] for e in events if e["event"] == "state"]
    assert states[:5] == ["starting", "activating", "idle", "connecting", "listening"]
    assert "speaking" in states and states[-1] == "idle"
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["websocket"]["url"] == server.ws_url and saved["session_id"] == "conf-0"
    assert dict(server.http[0].headers)["User-Agent"] == "my-board/2.4.2"


async def test_mqtt_answer_is_reported_not_crashed(tmp_path: Path) -> None:
    async def ota(request: web.Request) -> web.Response:
        return web.json_response(
            {"mqtt": {"endpoint": "127.0.0.1:1883"}, "websocket": {"url": "ws://127.0.0.1:1/"}}
        )

    app = web.Application()
    app.router.add_post("/ota/", ota)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        code, _, err = await run_cli(
            "--ota-url",
            f"http://127.0.0.1:{port}/ota/",
            "--say",
            "hi",
            "--json",
            "--state",
            str(tmp_path / "s.json"),
        )
    finally:
        await runner.cleanup()
    assert code == 1  # the mqtt section selects MQTT + UDP; nothing listens on 1883
    assert "cannot connect to MQTT 127.0.0.1:1883" in err and "Traceback" not in err
    code, _, err = await run_cli(
        "--ws-url", "ws://127.0.0.1:1/", "--say", "hi", "--state", "/dev/null/x.json"
    )
    assert code == 1 and "cannot write device state file" in err and "Traceback" not in err


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--say", "hi"]) == 2
    assert "--ota-url or --ws-url" in capsys.readouterr().err
    assert main(["swarm", "-n", "1", "--say", "x"]) == 2
