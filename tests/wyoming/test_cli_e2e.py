"""``xiaozhi-server --wyoming-port 0`` prints the Wyoming port next to the others and answers
Home Assistant's ``describe`` there; it stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info

from server.config import Settings
from tests.timing import scaled

pytestmark = pytest.mark.e2e


def test_wyoming_port_option(tmp_path: Path) -> None:
    env = {**os.environ, "XIAOZHI_OTA__DB_PATH": str(tmp_path / "devices.sqlite3")}
    argv = [
        sys.executable,
        "-m",
        "server",
        "--port",
        "0",
        "--http-port",
        "0",
        "--wyoming-port",
        "0",
    ]
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert proc.stdout is not None
        port = 0
        deadline = time.monotonic() + scaled(60)
        lines = []
        while time.monotonic() < deadline and not port:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if m := re.search(r"Wyoming service for Home Assistant: port (\d+)", line):
                port = int(m.group(1))
        assert port, "".join(lines[-20:])

        async def ask() -> Info:
            async with AsyncTcpClient("127.0.0.1", port) as client:
                await client.write_event(Describe().event())
                event = await asyncio.wait_for(client.read_event(), scaled(10))
                assert event is not None
                return Info.from_event(event)

        info = asyncio.run(ask())
        assert info.asr[0].models[0].name == Settings().asr.provider and info.tts
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(scaled(20)) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
