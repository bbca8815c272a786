"""Drive simulated devices (``device.swarm``) against a ServerProcess and gather figures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from bench.loadgen import ClientCpu, lean_boards
from bench.serverproc import ServerProcess
from bench.stats import percentile
from device.arguments import RunSettings
from device.swarm import SwarmConfig, run_swarm

UTTERANCES = ("turn on the lamp", "what time is it")


def swarm_args(
    ws_url: str,
    n: int,
    turns: int,
    think_s: float,
    *,
    say: Sequence[str] = UTTERANCES,
    abort_after: float | None = None,
    ramp: float | None = None,
) -> SwarmConfig:
    """A swarm of ``n`` boards: real-time audio, flite-spoken utterances, ``turns`` rounds."""
    settings = RunSettings(
        ws_url=ws_url, say=tuple(say), turns=turns, think_s=think_s, abort_after_s=abort_after
    )
    return SwarmConfig(settings, n=n, ramp_s=min(2.0, 0.1 * n) if ramp is None else ramp)


def _tenth(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def pct(values: list[float]) -> dict[str, float | int | None]:
    p50, p95 = percentile(values, 50), percentile(values, 95)
    return {"n": len(values), "p50": _tenth(p50), "p95": _tenth(p95)}


def swarm(config: SwarmConfig, timeout_s: float) -> dict[str, Any]:
    """Run the swarm once with lean boards (bench.loadgen); adds ``client``: the load
    generator's CPU (s, % of one core) and what its boards shared instead of encoding/decoding."""
    with ClientCpu() as client, lean_boards() as lean:
        report = asyncio.run(asyncio.wait_for(run_swarm(config), timeout_s))
    report["client"] = {**client.as_dict(), **lean.as_dict()}
    return report


def run_devices(srv: ServerProcess, config: SwarmConfig, timeout_s: float) -> dict[str, Any]:
    """Run the swarm once (:func:`swarm`); adds server CPU (s, %), RSS and the ledger lines of
    these turns."""
    since = srv.mark()
    cpu0, t0 = srv.cpu_s(), time.monotonic()
    report = swarm(config, timeout_s)
    wall = time.monotonic() - t0
    cpu = srv.cpu_s() - cpu0
    report["server"] = {
        "cpu_s": round(cpu, 2),
        "cpu_pct": round(100 * cpu / wall, 1) if wall else None,
        "rss_kib": srv.rss_kib(),
        "threads": srv.threads(),
        "wall_s": round(wall, 1),
    }
    report["ledger"] = srv.ledger(since)
    return report


def mark(value: float | None, target: float, le: bool = True) -> str:
    if value is None:
        return "n/a"
    return "pass" if (value <= target if le else value >= target) else "MISS"
