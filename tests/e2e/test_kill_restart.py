"""kill -9 in the middle of conversations, then a restart: the device registry (SQLite, WAL,
synchronous=FULL) is intact with every binding, and the simulated boards (swarm with
``reconnect``) come back with backoff and finish every turn they had to say."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.arguments import RunSettings
from device.swarm import SwarmConfig, run_swarm
from tests.timing import scaled

pytestmark = pytest.mark.e2e

READY = re.compile(r"WebSocket port (\d+), HTTP port (\d+)")
LEDGER = re.compile(r"turn \d+: .* frames=\d+")
BOARDS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """``python -m server`` on fixed ports; counts its completed-turn ledger lines."""

    def __init__(self, env: dict[str, str], ws_port: int, http_port: int) -> None:
        cmd = [sys.executable, "-m", "server", "--port", str(ws_port), "--http-port"]
        cmd += [str(http_port), "--log-level", "info"]
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.ready = threading.Event()
        self.turns = 0
        self.lines: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if READY.search(line):
                self.ready.set()
            if LEDGER.search(line):
                self.turns += 1
        self.ready.set()

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()


def _registry(db: Path) -> tuple[str, list[tuple[str, int]]]:
    """(integrity check, [(device_id, bound)]) read by another process's connection."""
    with sqlite3.connect(db) as conn:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        rows = conn.execute("SELECT device_id, bound FROM devices ORDER BY device_id").fetchall()
    return str(check), [(str(d), int(b)) for d, b in rows]


async def _wait(pred: object, timeout_s: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not pred():  # type: ignore[operator]
        if loop.time() > end:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


async def test_kill_9_then_restart_keeps_the_registry_and_boards_carry_on(
    tmp_path: Path, procs: list[Proc]
) -> None:
    db = tmp_path / "devices.sqlite3"
    env = {
        **os.environ,
        "XIAOZHI_OTA__DB_PATH": str(db),
        "XIAOZHI_OTA__ACTIVATION": "true",
        "XIAOZHI_OTA__AUTO_BIND": "true",
    }
    ws_port, http_port = _free_port(), _free_port()
    first = Proc(env, ws_port, http_port)
    procs.append(first)
    assert first.ready.wait(scaled(90)) and first.proc.poll() is None, first.lines[-20:]
    settings = RunSettings(
        ota_url=f"http://127.0.0.1:{http_port}/xiaozhi/ota/",
        say=("turn on the lamp", "turn off the lamp"),
        turns=3,
        think_s=0.3,
        reply_timeout_s=15.0,
    )
    config = SwarmConfig(settings, n=BOARDS, ramp_s=0.5, reconnect=True, reconnect_give_up_s=120)
    swarm = asyncio.create_task(run_swarm(config))
    try:
        await _wait(lambda: first.turns >= 4, scaled(120), "4 turns before the kill")
        first.kill9()  # mid-conversation: some boards are talking right now
        check, rows = _registry(db)
        assert check == "ok"
        assert len(rows) == BOARDS and all(bound == 1 for _, bound in rows), rows
        second = Proc(env, ws_port, http_port)
        procs.append(second)
        assert second.ready.wait(scaled(90)) and second.proc.poll() is None, second.lines[-20:]
        report = await asyncio.wait_for(swarm, scaled(300))
    finally:
        swarm.cancel()
    devices = report["devices"]
    assert [d["error"] for d in devices] == [None] * BOARDS, devices
    assert all(len(d["turns"]) >= 6 for d in devices)  # every turn said, the cut one again
    assert sum(d["reconnects"] for d in devices) >= 1
    assert second.turns >= 1
    said = {"turn on the lamp", "turn off the lamp"}
    done = [t for d in devices for t in d["turns"] if t["stt"] is not None]
    assert len(done) >= 6 * BOARDS - BOARDS  # at most the cut turn per board lacks a transcript
    assert {t["stt"] for t in done} <= said | {None}
    second.stop()
    check, rows_after = _registry(db)
    assert check == "ok" and rows_after == rows
