"""Capacity: N talking devices (real-time audio, think time) against one server subprocess.

Per N: P50/P95 ``first_audio_ms`` (device-measured), late downlink frames (bench.downlink),
device-side dropped packets, server CPU % (from /proc over the run) and RSS. Capacity = largest
N with P95 first_audio ≤ 1000 ms and < 1 % late frames. ``XIAOZHI_ASR__MODE`` picks grammar/lm.
"""

from __future__ import annotations

from typing import Any

from bench.downlink import record_arrivals
from bench.serverproc import ServerProcess
from bench.turns import pct, run_devices, swarm_args


def _one(srv: ServerProcess, n: int, turns: int) -> dict[str, Any]:
    with record_arrivals() as arrivals:
        report = run_devices(srv, swarm_args(srv.ws_url, n, turns, 1.0), 120 + 30 * turns)
    devs = report["devices"]
    first = [
        t["first_audio_ms"] for d in devs for t in d["turns"] if t["first_audio_ms"] is not None
    ]
    late = arrivals.late()
    fa = pct(first)
    ok = fa["p95"] is not None and fa["p95"] <= 1000 and (late["late_pct"] or 0) < 1
    return {
        "n": n,
        "turns": fa["n"],
        "errors": sum(1 for d in devs if d["error"]),
        "fa_p50_ms": fa["p50"],
        "fa_p95_ms": fa["p95"],
        "late_pct": late["late_pct"],
        "frames": late["frames"],
        "dropped": sum(d["dropped_packets"] for d in devs),
        "cpu_pct": report["server"]["cpu_pct"],
        "rss_mib": round(report["server"]["rss_kib"] / 1024, 1),
        "ok": ok,
    }


def run(quick: bool = False, mode: str = "grammar") -> dict[str, Any]:
    sizes = (1, 5) if quick else (1, 5, 10, 20, 40) if mode == "grammar" else (1, 5, 10)
    turns = 1 if quick else 3
    rows = []
    with ServerProcess(env={"XIAOZHI_ASR__MODE": mode}) as srv:
        for n in sizes:
            rows.append(_one(srv, n, turns))
    passing = [r["n"] for r in rows if r["ok"] and not r["errors"]]
    capacity = max(passing, default=0)
    verdict = "pass (≥20)" if capacity >= 20 else "MISS (target ≥20)"
    rows.append({**dict.fromkeys(rows[0]), "n": f"capacity={capacity}", "ok": verdict})
    return {"mode": mode, "capacity": capacity, "rows": rows}


def run_lm(quick: bool = False) -> dict[str, Any]:
    """Free-text LM mode at fewer N."""
    return run(quick, mode="lm")
