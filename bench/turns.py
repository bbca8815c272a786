"""Drive simulated devices (``device.swarm``) against a ServerProcess and gather figures."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.serverproc import ServerProcess
from bench.stats import percentile
from device.cli import add_common
from device.swarm import run_swarm

UTTERANCES = ("turn on the lamp", "what time is it")


def swarm_args(ws_url: str, n: int, turns: int, think_s: float, **extra: Any) -> argparse.Namespace:
    """A ``xiaozhi-device swarm`` argument set: real-time audio, flite-spoken utterances."""
    p = argparse.ArgumentParser()
    add_common(p)
    argv = ["--ws-url", ws_url, "--turns", str(turns), "--think", str(think_s)]
    for say in extra.pop("say", UTTERANCES):
        argv += ["--say", say]
    if extra.get("abort_after") is not None:
        argv += ["--abort-after", str(extra.pop("abort_after"))]
    args = p.parse_args(argv)
    args.n, args.ramp, args.seed = n, extra.pop("ramp", min(2.0, 0.1 * n)), 1
    return args


def pct(values: list[float]) -> dict[str, float | int | None]:
    r = lambda v: None if v is None else round(v, 1)  # noqa: E731
    return {"n": len(values), "p50": r(percentile(values, 50)), "p95": r(percentile(values, 95))}


def run_devices(srv: ServerProcess, args: argparse.Namespace, timeout_s: float) -> dict[str, Any]:
    """Run the swarm once; adds server CPU (s, %), RSS and the ledger lines of these turns."""
    since = srv.mark()
    cpu0, t0 = srv.cpu_s(), time.monotonic()
    report = asyncio.run(asyncio.wait_for(run_swarm(args), timeout_s))
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
