"""Capacity: N talking devices (real-time audio, think time) against one server subprocess.

Per N: P50/P95 ``first_audio_ms`` (device-measured), late downlink frames (bench.downlink),
device-side dropped packets, server CPU % (from /proc over the run) and RSS, and the load
generator's CPU % (this process, bench.loadgen) next to it. Capacity = largest N with P95
first_audio ≤ 1000 ms and < 1 % late frames; once an N misses, larger ones are not run (they
only miss more, slowly).

Engines: :data:`FAST` (pocketsphinx + flite, the stack the ≥ 20 devices target was set for) in
``grammar`` or free-text ``lm`` mode; ``capacity_default`` runs the server's defaults
(two-pass ASR with Whisper, Piper), whose single board already answers in more than a second.
``capacity_workers``: the same as ``capacity`` against ``--workers 2 --reuse-port`` (one
process per core on the same port; a Python process computes on one core at a time).
"""

from __future__ import annotations

from typing import Any

from bench.downlink import record_arrivals
from bench.serverproc import ServerProcess
from bench.turns import pct, run_devices, swarm_args

FAST = {
    "XIAOZHI_ASR__PROVIDER": "pocketsphinx",
    "XIAOZHI_ASR__LANGUAGE": "en-US",
    "XIAOZHI_TTS__PROVIDER": "flite",
}
"""pocketsphinx and flite: a few ms of CPU per turn each."""
TURNS = 2
"""Rounds of the two utterances per board and N."""


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
        "client_cpu_pct": report["client"]["cpu_pct"],
        "rss_mib": round(report["server"]["rss_kib"] / 1024, 1),
        "ok": ok,
    }


def run(
    quick: bool = False,
    mode: str = "grammar",
    env: dict[str, str] | None = None,
    sizes: tuple[int, ...] | None = None,
    workers: int = 0,
) -> dict[str, Any]:
    """``workers`` > 0: the server runs as that many workers sharing its ports."""
    if sizes is None:
        sizes = (1, 5, 10, 20, 40, 60) if mode == "grammar" else (1, 5, 10)
    sizes = sizes[:2] if quick else sizes
    turns = 1 if quick else TURNS
    rows = []
    env = {**(FAST if env is None else env), "XIAOZHI_ASR__MODE": mode}
    with ServerProcess(env=env, workers=workers) as srv:
        engines = srv.engines()
        for n in sizes:
            rows.append(_one(srv, n, turns))
            if not rows[-1]["ok"]:
                break  # past the knee
    passing = [r["n"] for r in rows if r["ok"] and not r["errors"]]
    capacity = max(passing, default=0)
    verdict = "pass (≥60)" if capacity >= 60 else "MISS (target ≥60)"
    rows.append({**dict.fromkeys(rows[0]), "n": f"capacity={capacity}", "ok": verdict})
    return {
        "mode": mode,
        "workers": workers or 1,
        "capacity": capacity,
        "engines": engines,
        "rows": rows,
    }


def run_lm(quick: bool = False) -> dict[str, Any]:
    """Free-text LM mode at fewer N."""
    return run(quick, mode="lm")


def run_workers(quick: bool = False) -> dict[str, Any]:
    """Grammar mode against two workers on one port (``--workers 2 --reuse-port``)."""
    return run(quick, sizes=(1, 5, 10, 20, 40, 60, 80), workers=2)


def run_default(quick: bool = False) -> dict[str, Any]:
    """The server's default engines, at fewer N."""
    return run(quick, env={}, sizes=(1, 2, 4, 8))
