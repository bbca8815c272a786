"""``xiaozhi-device swarm`` as a user runs it: a readable table, no files unless asked."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from pathlib import Path

from rich.console import Console

from device.swarm import percentile, print_table, summarize
from tests.peers.deviant_server import DeviantConfig, DeviantServer
from tests.timing import scaled


def test_figures_are_rounded_to_a_tenth_of_a_millisecond() -> None:
    turns = [
        {"endpoint_ms": v, "first_audio_ms": v, "abort_ms": None, "stale_frames": 0}
        for v in (883.6400000000001, 883.64, 901.27)
    ]
    summary = summarize([{"error": None, "turns": turns}])
    assert summary["first_audio_ms"] == {"n": 3, "p50": 883.6, "p95": 899.5, "mean": 889.5}
    assert percentile([], 50) is None
    out = io.StringIO()
    print_table(summary, Console(file=out, width=100))
    table = out.getvalue()
    assert "883.6 " in table and "883.64" not in table and "0000" not in table


async def swarm(cwd: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "device",
        "swarm",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(proc.communicate(), scaled(90))
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_swarm_writes_results_only_when_asked(tmp_path: Path) -> None:
    config = DeviantConfig(working=True, greet_on_detect=False, ping_interval_s=None)
    async with DeviantServer(config) as server:
        common = ["-n", "2", "--ramp", "0.2", "--ws-url", server.ws_url, "--say", "what time is it"]
        code, out, err = await swarm(tmp_path, *common)
        assert code == 0, err
        assert "swarm: 2 devices, 2 turns, 0 errors" in out
        assert os.listdir(tmp_path) == []  # no swarm-results.json dropped in the cwd
        code, out, err = await swarm(tmp_path, *common, "--results", "r.json")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["devices"] == 2 and report["summary"]["errors"] == 0
    assert [t["stt"] for d in report["devices"] for t in d["turns"]] == ["what time is it"] * 2
