"""Soak: ≥ 1,000 voice turns over several simulated boards against one server subprocess.

The turns run in rounds of ``round_turns`` (every board talks in every round, real-time audio,
flite-spoken utterances, the real offline engines in the server). Between rounds, with no session
open, the server's resident memory (RSS, KiB), threads, open file descriptors and asyncio tasks
(``xiaozhi_event_loop_tasks`` on ``/metrics``) are sampled. Growth is the end figure against the
one after the first ``baseline_turns`` turns, in percent (goal < 5 %): warm-up allocations (models,
caches, arenas) happen before the baseline; a leak grows with the turn count after it.

A turn is *lost* when the board heard no transcript, or the wrong one, or no reply audio.

    python -m bench.soak --devices 5 --turns 1000       # make soak; writes bench/results/soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import time
import urllib.request
from typing import Any

from bench.serverproc import ServerProcess
from bench.stats import write_result
from bench.turns import UTTERANCES, swarm_args
from device.swarm import run_swarm

TASKS = re.compile(r"^xiaozhi_event_loop_tasks (\S+)$", re.MULTILINE)
FIGURES = ("rss_kib", "threads", "fds", "tasks")


def event_loop_tasks(srv: ServerProcess) -> int:
    """asyncio tasks alive in the server, read from its ``/metrics``."""
    url = f"http://127.0.0.1:{srv.http_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:  # loopback only
        text = response.read().decode()
    found = TASKS.search(text)
    return int(float(found.group(1))) if found else -1


def sample(srv: ServerProcess, turns: int) -> dict[str, Any]:
    return {
        "turns": turns,
        "rss_kib": srv.rss_kib(),
        "threads": srv.threads(),
        "fds": srv.fds(),
        "tasks": event_loop_tasks(srv),
        "t_s": round(time.monotonic(), 1),
    }


def growth_pct(first: dict[str, Any], last: dict[str, Any]) -> dict[str, float | None]:
    """Per figure: ``(last - first) / first`` in percent, one decimal."""
    out: dict[str, float | None] = {}
    for key in FIGURES:
        a, b = first[key], last[key]
        out[key] = round(100.0 * (b - a) / a, 1) if a > 0 else None
    return out


def lost_turns(report: dict[str, Any]) -> tuple[int, int]:
    """(turns run, turns lost: no/wrong transcript or no reply audio) of one swarm report."""
    said = [u.lower() for u in UTTERANCES]
    run = lost = 0
    for device in report["devices"]:
        turns = device["turns"]
        run += len(turns)
        for turn in turns:
            stt = (turn.get("stt") or "").lower().strip(" .?!")
            if stt not in said or turn.get("first_audio_ms") is None:
                lost += 1
        if device["error"]:
            lost += 1
    return run, lost


def run(
    devices: int = 5,
    turns: int = 1000,
    round_turns: int = 100,
    baseline_turns: int = 100,
    think_s: float = 0.3,
) -> dict[str, Any]:
    """Run the soak; figures per round, growth after ``baseline_turns``, errors and lost turns."""
    per_device = max(1, math.ceil(round_turns / devices / len(UTTERANCES)))
    rounds = max(1, math.ceil(turns / (per_device * devices * len(UTTERANCES))))
    samples: list[dict[str, Any]] = []
    done = lost = errors = 0
    started = time.monotonic()
    with ServerProcess() as srv:
        samples.append(sample(srv, 0))
        for index in range(rounds):
            config = swarm_args(srv.ws_url, devices, per_device, think_s)
            report = asyncio.run(asyncio.wait_for(run_swarm(config), 600 + 40 * per_device))
            ran, missed = lost_turns(report)
            done, lost = done + ran, lost + missed
            errors += report["summary"]["errors"]
            samples.append(sample(srv, done))
            print(
                f"round {index + 1}/{rounds}: {done} turns, {lost} lost, {errors} errors, "
                + ", ".join(f"{k}={samples[-1][k]}" for k in FIGURES),
                flush=True,
            )
        alive = srv.proc is not None and srv.proc.poll() is None
    baseline = next((s for s in samples if s["turns"] >= baseline_turns), samples[-1])
    growth = growth_pct(baseline, samples[-1])
    row = {
        "devices": devices,
        "turns": done,
        "lost": lost,
        "errors": errors,
        "server_alive": alive,
        **{f"{k}_growth_pct": v for k, v in growth.items()},
        "wall_min": round((time.monotonic() - started) / 60, 1),
    }
    return {
        "rows": [row],
        "baseline": baseline,
        "end": samples[-1],
        "growth_pct": growth,
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    p.add_argument("--devices", type=int, default=5, help="boards talking in parallel")
    p.add_argument("--turns", type=int, default=1000, help="turns in all (at least)")
    p.add_argument("--round-turns", type=int, default=100, help="turns between two samples")
    args = p.parse_args(argv)
    result = run(args.devices, args.turns, args.round_turns)
    print(json.dumps(result["rows"][0]))
    print(f"written {write_result('soak', result)}")
    row = result["rows"][0]
    grew = [k for k, v in result["growth_pct"].items() if v is not None and v >= 5.0]
    return 0 if row["server_alive"] and not row["lost"] and not grew else 1


if __name__ == "__main__":
    raise SystemExit(main())
