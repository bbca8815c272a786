"""Percentiles, run summaries, the machine and its load, result files: shared by the benchmarks."""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """Count, P50, P95 and max of ``values`` (ms or whatever unit they carry)."""
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values) if values else None,
    }


Figures = dict[str, float | None]
"""One run's figures by name (``first_audio_ms.p95``); None: not measured in that run."""


def over_runs(runs: Sequence[Mapping[str, float | None]]) -> dict[str, dict[str, Any]]:
    """Per figure: median, min and max over the runs that measured it, and every run's value."""
    names: dict[str, None] = {}
    for figures in runs:
        names.update(dict.fromkeys(figures))
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        values = [f.get(name) for f in runs]
        have = [float(v) for v in values if v is not None]
        out[name] = {
            "median": statistics.median(have) if have else None,
            "min": min(have) if have else None,
            "max": max(have) if have else None,
            "runs": len(have),
            "values": values,
        }
    return out


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.partition("=")[2].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_mib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    """Where a figure came from."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_mib": _mem_total_mib(),
        "os": _os_release(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
    }


def _proc_stat_cpu() -> tuple[int, int] | None:
    """Busy (user+nice+system+irq+softirq) and steal clock ticks of all CPUs, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            first = f.readline().split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    ticks = [int(x) for x in first[1:9]] + [0] * max(0, 9 - len(first))
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks[:8]
    return user + nice + system + irq + softirq, steal


def _descendants_cpu_s(root: int) -> float:
    """CPU seconds (self + waited-for children) of the live processes below ``root``."""
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        cpu[pid] = sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK
    total = 0.0
    for pid in cpu:
        p = parent.get(pid, 0)
        while p > 1 and p != root:
            p = parent.get(p, 0)
        if p == root and pid != root:
            total += cpu[pid]
    return total


def ours_cpu_s() -> float:
    """CPU seconds of this process, its waited-for children and its live descendants."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    rusage = s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime
    return rusage + _descendants_cpu_s(os.getpid())


class LoadMeter:
    """How busy the machine was during one benchmark run, and how much of that was not us.

    ``others_cpu_s`` = busy CPU of the whole machine (/proc/stat: user, nice, system, irq,
    softirq) − the CPU of this process and everything it started (servers, nginx, flite). It
    includes kernel interrupt work done for our sockets, so a quiet machine shows a small
    positive figure; a test suite running beside shows up as seconds per second.
    """

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.load0 = os.getloadavg()
        self.stat0 = _proc_stat_cpu()
        self.ours0 = ours_cpu_s()

    def stop(self) -> dict[str, Any]:
        wall = time.monotonic() - self.t0
        ours = ours_cpu_s() - self.ours0
        stat1 = _proc_stat_cpu()
        out: dict[str, Any] = {
            "wall_s": round(wall, 1),
            "loadavg_start": [round(x, 2) for x in self.load0],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "ours_cpu_s": round(ours, 1),
        }
        if self.stat0 is not None and stat1 is not None:
            busy = (stat1[0] - self.stat0[0]) / CLK_TCK
            others = max(0.0, busy - ours)
            out.update(
                machine_busy_cpu_s=round(busy, 1),
                others_cpu_s=round(others, 1),
                others_cpu_pct=round(100 * others / wall, 1) if wall else None,
                steal_s=round((stat1[1] - self.stat0[1]) / CLK_TCK, 1),
            )
        return out


def numbers(values: Iterable[tuple[str, Any]]) -> Figures:
    """The numeric (or None) values of ``values`` as figures; booleans count as 0/1."""
    out: Figures = {}
    for name, value in values:
        if value is None or isinstance(value, int | float):
            out[name] = None if value is None else float(value)
    return out


def write_result(name: str, data: dict[str, Any], results_dir: Path = RESULTS_DIR) -> Path:
    """Write ``bench/results/<name>.json`` with the machine description and a timestamp."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    payload = {
        "benchmark": name,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        **data,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
