"""Scaled capacity: talking devices at P95 ``first_audio_ms`` ≤ 1 s with 1 vs 2 workers.

The real topology: ``xiaozhi-server --workers W`` (supervisor, SQLite store shared by the
workers) behind nginx (the shipped deploy/nginx/xiaozhi.conf, started on a loopback port), the
simulator swarm connecting through nginx (stickiness by Device-Id). Per W and N: P50/P95
first_audio (device-measured), errors, and the CPU of all worker processes together (% of one
core, from /proc over the run). Capacity(W) = largest N with P95 ≤ 1000 ms and no errors;
ratio = capacity(2) / capacity(1). Needs nginx (make setup: service-deps).

Engines: pocketsphinx + flite (bench.capacity.FAST), so the figures compare with ``capacity``.
Once an N misses, larger ones are not run. ``client_cpu_pct``: the load generator's CPU.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.capacity import FAST
from bench.serverproc import CLK_TCK, engines
from bench.turns import pct, swarm, swarm_args


def _services() -> Any:
    """The test suite's service helpers (nginx on free loopback ports); the bench runs from the
    repository, like ``make bench``, so they are imported from there when needed."""
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from tests.storage import services

    return services


STARTED = re.compile(r"^worker (\d+) started \(pid (\d+)")


class WorkerSet:
    """``python -m server --workers W`` on fixed ports; worker pids read from its output."""

    def __init__(self, workers: int, db: Path) -> None:
        self.ws, self.http = _services().free_port(), _services().free_port()
        while abs(self.ws - self.http) < workers:
            self.http = _services().free_port()
        self.env = env = {
            **os.environ,
            **FAST,
            "XIAOZHI_OTA__DB_PATH": str(db),
            "XIAOZHI_WEBSOCKET__HOST": "127.0.0.1",
            "XIAOZHI_OTA__HOST": "127.0.0.1",
        }
        cmd = [sys.executable, "-m", "server", "--workers", str(workers), "--port", str(self.ws)]
        self.proc = subprocess.Popen(
            [*cmd, "--http-port", str(self.http), "--log-level", "warning"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.pids: list[int] = []
        self.ready = threading.Event()
        self.n = workers
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if m := STARTED.search(line):
                self.pids.append(int(m.group(2)))
            if line.startswith("xiaozhi-server workers ready"):
                self.ready.set()
        self.ready.set()

    def cpu_s(self) -> float:
        total = 0.0
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _one(public: int, workers: WorkerSet, n: int, turns: int) -> dict[str, Any]:
    config = swarm_args(f"ws://127.0.0.1:{public}/xiaozhi/v1/", n, turns, 1.0)
    cpu0, t0 = workers.cpu_s(), time.monotonic()
    report = swarm(config, 120 + 30 * turns)
    wall, cpu = time.monotonic() - t0, workers.cpu_s() - cpu0
    devs = report["devices"]
    first = [t["first_audio_ms"] for d in devs for t in d["turns"] if t["first_audio_ms"]]
    fa = pct(first)
    errors = sum(1 for d in devs if d["error"])
    ok = fa["p95"] is not None and fa["p95"] <= 1000 and not errors
    return {
        "workers": workers.n,
        "n": n,
        "turns": fa["n"],
        "errors": errors,
        "fa_p50_ms": fa["p50"],
        "fa_p95_ms": fa["p95"],
        "cpu_pct": round(100 * cpu / wall, 1) if wall else None,
        "client_cpu_pct": report["client"]["cpu_pct"],
        "ok": ok,
    }


def run(quick: bool = False) -> dict[str, Any]:
    sizes = (2, 4, 8) if quick else (5, 10, 20, 40)
    turns = 1
    rows: list[dict[str, Any]] = []
    capacity: dict[int, int] = {}
    used: dict[str, str] = {}
    for w in (1, 2):
        with tempfile.TemporaryDirectory(prefix="xiaozhi-scaled-") as tmp:
            workers = WorkerSet(w, Path(tmp) / "devices.sqlite3")
            used = engines(workers.env)
            try:
                if not workers.ready.wait(180):
                    raise RuntimeError("workers did not become ready")
                ws = [workers.ws + i for i in range(w)]
                http = [workers.http + i for i in range(w)]
                with _services().nginx(ws, http) as public:
                    for n in sizes:
                        row = _one(public, workers, n, turns)
                        rows.append(row)
                        if not row["ok"]:
                            break  # past the knee: larger N only fail more
            finally:
                workers.stop()
        capacity[w] = max((r["n"] for r in rows if r["workers"] == w and r["ok"]), default=0)
    ratio = round(capacity[2] / capacity[1], 2) if capacity[1] else None
    rows.append({**dict.fromkeys(rows[0]), "workers": "capacity",
                 "n": f"1w={capacity[1]} 2w={capacity[2]} ratio={ratio}"})  # fmt: skip
    return {"capacity_1": capacity[1], "capacity_2": capacity[2], "ratio": ratio,
            "cores": os.cpu_count(), "engines": used, "rows": rows}  # fmt: skip
