"""``GET /api/dashboard``: what the Dashboard page draws, read from the server's own metrics.

* ``sessions``: open assistant sessions now (and MQTT boards, when that transport runs);
* ``devices``: the registry's boards (id, board, firmware, last seen in s since the epoch);
* ``latency``: the per-turn ``first_audio`` latency histogram (end of the user's speech → first
  reply frame sent), as non-cumulative counts per bucket (``le`` upper bounds in s);
* ``recent_turns``: the last turns' stage durations (s), newest last (the ledger,
  :mod:`server.session.ledger`);
* ``errors``: error counts by code; ``turns``: completed turns.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

from server.devices import DeviceRegistry
from server.metrics import ServerMetrics

TURN_LATENCY_STAGE: Final = "first_audio"
"""The stage shown as the per-turn latency histogram."""


def _samples(metrics: ServerMetrics, family: str) -> list[Any]:
    for metric in metrics.registry.collect():
        if metric.name == family:
            return list(metric.samples)
    return []


def latency_histogram(metrics: ServerMetrics, stage: str = TURN_LATENCY_STAGE) -> dict[str, Any]:
    """``{"stage", "buckets": [{"le": s, "count": n}], "count", "sum_s"}`` (counts per bucket)."""
    buckets: list[dict[str, Any]] = []
    count, total, previous = 0, 0.0, 0.0
    for sample in _samples(metrics, "xiaozhi_stage_latency_seconds"):
        if sample.labels.get("stage") != stage:
            continue
        if sample.name.endswith("_bucket"):
            le = float(sample.labels["le"])
            buckets.append({"le": None if math.isinf(le) else le, "count": sample.value - previous})
            previous = sample.value
        elif sample.name.endswith("_count"):
            count = int(sample.value)
        elif sample.name.endswith("_sum"):
            total = float(sample.value)
    return {"stage": stage, "buckets": buckets, "count": count, "sum_s": total}


def error_counts(metrics: ServerMetrics) -> dict[str, int]:
    """Errors by code since the start."""
    return {
        str(s.labels["code"]): int(s.value)
        for s in _samples(metrics, "xiaozhi_errors")
        if s.name.endswith("_total")
    }


def completed_turns(metrics: ServerMetrics) -> int:
    return sum(
        int(s.value) for s in _samples(metrics, "xiaozhi_turns") if s.name.endswith("_total")
    )


async def dashboard_json(
    metrics: ServerMetrics, registry: DeviceRegistry, health: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """The whole dashboard payload (see the module docstring)."""
    try:
        status = health()
    except Exception as exc:  # the page still shows the rest
        status = {"status": "error", "error": str(exc)}
    devices = [
        {
            "device_id": d.device_id,
            "client_id": d.client_id,
            "board": d.board,
            "firmware": d.firmware,
            "last_seen": d.last_seen,
            "bound": d.bound,
        }
        for d in await registry.list()
    ]
    return {
        "status": status.get("status", "ok"),
        "uptime_s": status.get("uptime_s"),
        "sessions": metrics.connections,
        "mqtt": status.get("mqtt"),
        "providers": status.get("providers", {}),
        "devices": devices,
        "turns": completed_turns(metrics),
        "latency": latency_histogram(metrics),
        "recent_turns": list(metrics.recent_turns)[-20:],
        "errors": error_counts(metrics),
    }
