"""Checkers of server audio (no working ASR needed): item 10 on every spoken message the server
sent (greeting or reply) and item 20, an ``abort`` during a greeting."""

from __future__ import annotations

from conformance.report import ItemResult
from conformance.server.items import judged, not_applicable, result
from conformance.server.records import RunRecord
from conformance.server.replies import check_replies, collect_replies


def check_10(run: RunRecord) -> ItemResult:
    sessions = [s for s in run.sessions if s.server_hello is not None]
    if not sessions:
        return not_applicable(10, "no session got a hello")
    replies = [r for s in sessions for r in collect_replies(s)]
    problems, summary = check_replies(sessions)
    if not replies and not problems:
        return not_applicable(10, "the server spoke no audio (no greeting, no answered turn)")
    shown = problems[:6] + ([f"(+{len(problems) - 6} more)"] if len(problems) > 6 else [])
    return judged(10, shown, [] if problems else [summary])


def check_20(run: RunRecord) -> ItemResult:
    s = run.session("v2-wake")
    if s is None:
        return not_applicable(20, "the wake-word session was not run")
    if s.server_hello is None:
        return result(20, False, f"the wake-word session did not open: {s.connect_error}")
    g = s.greeting
    if g is None or g.t_tts_start is None:
        why = g.note if g is not None and g.note else "no greeting"
        return not_applicable(20, f"the server does not greet on listen detect ({why})")
    started = f"greeting tts start {(g.t_tts_start - g.t_detect) * 1000:.0f} ms after detect"
    if g.t_abort is None:
        return not_applicable(20, f"{started}; it ended before any audio could be interrupted")
    if g.t_tts_stop is None:
        return result(
            20, False, f"{started}; no tts stop after abort (socket {s.closed_by or 'open'})"
        )
    delay_ms = (g.t_tts_stop - g.t_abort) * 1000
    frames = [e for e in s.received("binary") if e.t > g.t_abort]
    late = [e for e in frames if e.t > g.t_tts_stop]
    limit_ms = run.abort_stop_limit_s * 1000
    ev = (
        f"{started}; tts stop {delay_ms:.0f} ms after abort; "
        f"{len(frames) - len(late)} frames between abort and stop, {len(late)} after stop"
    )
    ok = delay_ms <= limit_ms and not late
    return result(20, ok, ev if ok else f"{ev} (limit {limit_ms:.0f} ms, none after stop)")
