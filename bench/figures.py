"""The figures of one run of each benchmark, flat: ``{"first_audio_ms.p95": 474.7, …}``.

Pure functions of a run's result dict (what a benchmark's ``run`` returns, or a result file
written before runs were repeated, which holds one run), so ``xiaozhi-bench report`` can
summarise the committed JSON without importing the engines. ``None``: not measured in that run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from bench.stats import Figures

Extract = Callable[[Mapping[str, Any]], Figures]


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, int | float) else None


def _cpu(run: Mapping[str, Any], into: Figures, prefix: str = "") -> None:
    """Server and load-generator CPU of a swarm run (% of one core)."""
    into[f"{prefix}server_cpu_pct"] = _num((run.get("server") or {}).get("cpu_pct"))
    into[f"{prefix}client_cpu_pct"] = _num((run.get("client") or {}).get("cpu_pct"))


def latency(run: Mapping[str, Any]) -> Figures:
    out: Figures = {}
    for name, value in (run.get("figures") or {}).items():
        if isinstance(value, Mapping):
            for key in ("n", "p50", "p95"):
                out[f"{name}.{key}"] = _num(value.get(key))
        else:
            out[name] = _num(value)
    _cpu(run, out)
    return out


def capacity(run: Mapping[str, Any]) -> Figures:
    out: Figures = {"capacity": _num(run.get("capacity"))}
    for row in run.get("rows", []):
        n = row.get("n")
        if not isinstance(n, int):
            continue
        for key in ("turns", "errors", "fa_p50_ms", "fa_p95_ms", "late_pct", "cpu_pct"):
            out[f"n{n}.{'server_cpu_pct' if key == 'cpu_pct' else key}"] = _num(row.get(key))
        out[f"n{n}.client_cpu_pct"] = _num(row.get("client_cpu_pct"))
    return out


def idle(run: Mapping[str, Any]) -> Figures:
    first, again, burst = run.get("idle", {}), run.get("second_wave", {}), run.get("burst", {})
    out: Figures = {
        "held": _num(first.get("held")),
        "errors": _num(first.get("errors")),
        "rss_per_conn_kib": _num(first.get("rss_per_conn_kib")),
        "threads_before": _num(first.get("threads_before")),
        "threads_held": _num(first.get("threads_held")),
        "burst.errors": _num(burst.get("errors")),
        "burst.hello_p50_ms": _num((burst.get("hello_ms") or {}).get("p50")),
        "burst.hello_p95_ms": _num((burst.get("hello_ms") or {}).get("p95")),
    }
    before, held, after = (
        first.get(k) for k in ("rss_before_kib", "rss_held_kib", "rss_after_close_kib")
    )
    if isinstance(before, int) and isinstance(held, int) and isinstance(after, int):
        grown = held - before
        kept = max(0, after - before)
        out["kept_after_close_pct"] = round(100 * kept / grown, 1) if grown > 0 else None
        second = again.get("rss_held_kib")
        if isinstance(second, int) and held > 0:
            out["second_wave_held_growth_pct"] = round(100 * (second - held) / held, 1)
    threads = (first.get("threads_before"), first.get("threads_held"))
    if all(isinstance(t, int) for t in threads):
        out["threads_added"] = float(threads[1] - threads[0])
    return out


def efficiency(run: Mapping[str, Any]) -> Figures:
    comps = run.get("components_s") or {}
    per_turn = _num(run.get("server_cpu_per_turn_s"))
    out: Figures = {
        "efficiency": _num(run.get("efficiency")),
        "server_cpu_ms_per_turn": None if per_turn is None else round(per_turn * 1000, 1),
        "components_cpu_ms_per_turn": round(1000 * sum(comps.values()), 1) if comps else None,
        "turns": _num(run.get("turns")),
    }
    for name, seconds in comps.items():
        out[f"{name}_cpu_ms_per_turn"] = round(1000 * float(seconds), 2)
    return out


def codec(run: Mapping[str, Any]) -> Figures:
    out: Figures = {}
    for row in run.get("rows", []):
        name = f"{row['op']}_{row['rate_hz'] // 1000}k"
        for key in ("ratio", "ours_fps", "raw_fps"):
            out[f"{name}.{key}"] = _num(row.get(key))
    return out


def speech_latency(run: Mapping[str, Any]) -> Figures:
    """``routing.command.p95``: voice (the TTS provider) and path (command / question)."""
    out: Figures = {}
    for key, value in (run.get("figures") or {}).items():
        voice, _, path = key.partition(" / ")
        name = f"{voice.split(' ')[0]}.{'command' if path.startswith('command') else 'question'}"
        for q in ("n", "p50", "p95"):
            out[f"{name}.{q}"] = _num(value.get(q))
    return out


def scaled(run: Mapping[str, Any]) -> Figures:
    out: Figures = {
        "capacity_1": _num(run.get("capacity_1")),
        "capacity_2": _num(run.get("capacity_2")),
        "ratio": _num(run.get("ratio")),
    }
    for row in run.get("rows", []):
        if isinstance(row.get("workers"), int) and isinstance(row.get("n"), int):
            name = f"w{row['workers']}.n{row['n']}"
            for key in ("fa_p95_ms", "cpu_pct", "client_cpu_pct", "errors"):
                out[f"{name}.{key}"] = _num(row.get(key))
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def transcribe(run: Mapping[str, Any]) -> Figures:
    out: Figures = {}
    for setup, streams in (run.get("capacity_streams") or {}).items():
        out[f"{setup}.capacity"] = _num(streams)
    for row in run.get("rows", []):
        name = f"{row['engine']}/{row['batching']}.s{row['streams']}"
        for key in ("partial_p95_ms", "final_p95_ms", "errors", "cpu_pct"):
            out[f"{name}.{key}"] = _num(row.get(key))
    return out


def accuracy(run: Mapping[str, Any]) -> Figures:
    out: Figures = {}
    for row in run.get("rows", []):
        name = f"{_slug(row['engine'])}.{_slug(row['voice'])}"
        for key, value in row.items():
            if key not in ("engine", "voice"):
                out[f"{name}.{key}"] = _num(value)
    return out


def endpointing(run: Mapping[str, Any]) -> Figures:
    out: Figures = {}
    for row in run.get("rows", []):
        for key in ("wrong", "wait_p50_ms", "wait_p95_ms"):
            out[f"{_slug(row['voice'])}.{key}"] = _num(row.get(key))
    return out


EXTRACT: dict[str, Extract] = {
    "latency": latency,
    "speech_latency": speech_latency,
    "capacity": capacity,
    "capacity_workers": capacity,
    "capacity_lm": capacity,
    "capacity_default": capacity,
    "scaled": scaled,
    "idle": idle,
    "efficiency": efficiency,
    "codec": codec,
    "accuracy": accuracy,
    "endpointing": endpointing,
    "transcribe": transcribe,
}


def of_run(name: str, run: Mapping[str, Any]) -> Figures:
    """Figures of one run of benchmark ``name`` ({} for a failed run or an unknown name)."""
    if run.get("failed"):
        return {}
    extract = EXTRACT.get(name)
    try:
        return extract(run) if extract else {}
    except (KeyError, TypeError, ValueError, AttributeError):  # a result of another shape: the
        return {}  # run is kept in the file; tests/bench/test_report.py checks committed ones
