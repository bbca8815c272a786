"""``xiaozhi-server --workers 2 --reuse-port``: two workers on the same WebSocket and HTTP ports
(SO_REUSEPORT), no proxy: boards boot through the one OTA URL, the kernel spreads their
connections over both workers, every board is answered, and the SQLite store (shared by the
workers on one machine) holds each board once."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

from device.arguments import RunSettings
from device.swarm import SwarmConfig, run_swarm
from server.storage import open_storage
from tests.e2e.test_scale_out import Workers, light_env
from tests.storage.services import free_port
from tests.timing import scaled

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(int(scaled(300)))]

BOARDS = 16


async def test_two_workers_share_one_port_and_both_answer_boards() -> None:
    ws, http = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="xiaozhi-reuse-") as tmp:
        db = Path(tmp) / "devices.sqlite3"
        env = light_env("", f"ws://127.0.0.1:{ws}/xiaozhi/v1/")
        del env["XIAOZHI_STORAGE_URL"]  # the SQLite file, shared by the workers
        env["XIAOZHI_OTA__DB_PATH"] = str(db)
        workers = Workers(env, 2, ws, http, "--reuse-port")
        try:
            assert workers.ready.wait(scaled(120)), workers.lines[-30:]
            assert len(workers.pids) == 2, workers.lines[-30:]
            ready = next(line for line in workers.lines if "workers ready" in line)
            assert f"{ws}/{http}, {ws}/{http}" in ready  # both on the same two ports
            settings = RunSettings(
                ota_url=f"http://127.0.0.1:{http}/xiaozhi/ota/",
                say=("turn on the lamp",),
                turns=1,
                think_s=0.5,
                reply_timeout_s=60.0,
            )
            config = SwarmConfig(settings, n=BOARDS, ramp_s=4.0)
            report = await asyncio.wait_for(run_swarm(config), scaled(180))
            store = await open_storage(None, str(db))
            try:
                records = await store.list()
            finally:
                await store.close()
        finally:
            code = workers.stop()
    assert code == 0, workers.lines[-30:]
    devices = report["devices"]
    assert [d["error"] for d in devices] == [None] * BOARDS, [d for d in devices if d["error"]]
    assert all(d["turns"][0]["stt"] == "turn on the lamp" for d in devices), devices
    assert sorted(workers.turns) == [0, 1], workers.turns  # the kernel used both workers
    assert sum(workers.turns.values()) == BOARDS
    assert sorted(r.device_id for r in records) == sorted(d["mac"].lower() for d in devices)
