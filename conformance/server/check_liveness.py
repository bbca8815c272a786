"""Item 15 (no working ASR needed): server pings and the idle close, both always measured."""

from __future__ import annotations

import statistics
from itertools import pairwise

from conformance.report import ItemResult
from conformance.server.items import judged
from conformance.server.records import RunRecord

IDLE_JITTER_S = 1.0
"""Scheduling/network slack allowed on the idle-close measurement (s)."""


def ping_summary(run: RunRecord) -> tuple[int, float | None]:
    """(number of server pings on all sessions, median interval between pings on one socket)."""
    count, gaps = 0, []
    for s in run.sessions:
        times = [e.t for e in s.received("ping")]
        count += len(times)
        gaps += [b - a for a, b in pairwise(times)]
    return count, (statistics.median(gaps) if gaps else None)


def check_15(run: RunRecord) -> ItemResult:
    problems, ev = [], []
    count, interval = ping_summary(run)
    every = f", every {interval:.1f} s" if interval is not None else ""
    pings = f"{count} server pings{every}"
    if count:
        labels = sorted({s.label for s in run.sessions if s.received("ping")})
        problems.append(f"{pings} (on {', '.join(labels)}); boards ≤ v1.8.9 may corrupt frames")
    else:
        ev.append(pings)
    idle = run.idle
    if idle is None:
        ev.append("idle close not measured (--idle-wait 0)")
        return judged(15, problems, ev, applicable=bool(problems))
    if idle.note:
        problems.append(f"idle session: {idle.note}")
    elif idle.closed_after_s is None:
        problems.append(
            f"the idle session was not closed within {idle.waited_s:.0f} s "
            f"(limit {idle.limit_s:.0f} s)"
        )
    else:
        line = (
            f"idle session closed {idle.closed_after_s:.1f} s after the last server message "
            f"(code {idle.close_code}, limit {idle.limit_s:.0f} s)"
        )
        late = idle.closed_after_s > idle.limit_s + IDLE_JITTER_S
        (problems if late else ev).append(line)
    return judged(15, problems, ev)
