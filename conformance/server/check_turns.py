"""Checkers of the turn items (need a completed voice turn): §9 items 7, 9, 12, 13 (pure)."""

from __future__ import annotations

from conformance.report import ItemResult
from conformance.server.items import not_applicable, result
from conformance.server.records import RunRecord


def check_7(run: RunRecord) -> ItemResult:
    plan = {1: "v1-auto", 2: "v2-manual", 3: "v3-reconnect"}
    found, problems = [], []
    for version, label in plan.items():
        s = run.session(label)
        if s is None:
            continue
        turn = s.turns[0] if s.turns else None
        what = []
        if s.burst_frames:
            what.append(f"{s.burst_frames}-frame burst")
        if turn and turn.dtx_frames:
            what.append(f"{turn.dtx_frames} DTX packets")
        if turn and turn.residual_frames:
            what.append(f"{turn.residual_frames} residual frames")
        if turn is None or not turn.answered:
            why = turn.note if turn else (s.connect_error or "no turn ran")
            closed = f", socket closed by {s.closed_by}" if s.closed_by == "server" else ""
            problems.append(
                f"v{version} ({', '.join(what) or 'plain'}): turn not completed ({why}{closed})"
            )
        else:
            found.append(f"v{version} turn completed ({', '.join(what) or 'plain'})")
    if not found and not problems:
        return not_applicable(7, "no turn-based session was run")
    return result(7, not problems, "; ".join(problems + found))


def check_9(run: RunRecord) -> ItemResult:
    results = []
    problems = []
    for s in run.sessions:
        if s.label == "v2-manual" and not any(t.mode == "manual" for t in s.turns):
            problems.append(f"manual turn not run: {s.connect_error or 'v2 session failed'}")
        for t in s.turns:
            if t.mode == "auto":
                if t.t_tts_start is None:
                    problems.append(f"{t.label}: no answer without listen stop ({t.note})")
                else:
                    results.append(
                        f"{t.label}: answered "
                        f"{(t.t_tts_start - (t.t_speech_end or t.t_listen_start)) * 1000:.0f} ms "
                        "after speech end"
                    )
            elif t.mode == "manual":
                if t.t_tts_start is None:
                    problems.append(f"{t.label}: no answer after listen stop")
                elif t.t_listen_stop is None or t.t_tts_start < t.t_listen_stop:
                    problems.append(
                        f"{t.label}: answered before listen stop (push-to-talk still held)"
                    )
                else:
                    results.append(
                        f"{t.label}: answered {(t.t_tts_start - t.t_listen_stop) * 1000:.0f} ms "
                        "after listen stop"
                    )
    if not results and not problems:
        return not_applicable(9, "no turn was run")
    return result(9, not problems, "; ".join(problems + results))


def check_12(run: RunRecord) -> ItemResult:
    turns = [(s, t) for s in run.sessions for t in s.turns if t.t_abort is not None]
    if not turns:
        tried = [t for s in run.sessions for t in s.turns if "interrupt" in t.label]
        if tried and tried[0].t_tts_start is not None:
            return not_applicable(12, "the reply ended before any audio could be interrupted")
        if tried:
            return result(12, False, f"{tried[0].label}: {tried[0].note or 'no reply'}")
        v1 = run.session("v1-auto")
        if v1 is None:
            return not_applicable(12, "no reply to interrupt")
        why = v1.connect_error or (v1.turns[0].note if v1.turns else "no turn") or "not answered"
        return result(12, False, f"no reply to interrupt: the first v1 turn failed ({why})")
    s, t = turns[0]
    assert t.t_abort is not None
    if t.t_tts_stop is None:
        return result(
            12,
            False,
            f"no tts stop after abort (waited; session closed by {s.closed_by or 'nobody'})",
        )
    delay_ms = (t.t_tts_stop - t.t_abort) * 1000
    after = [e for e in s.received("binary") if e.t > t.t_abort]
    late = [e for e in after if e.t > t.t_tts_stop]
    between = len(after) - len(late)
    ev = (
        f"tts stop {delay_ms:.0f} ms after abort; {between} frames between abort and stop; "
        f"{len(late)} after stop"
    )
    ok = delay_ms <= run.abort_stop_limit_s * 1000 and not late
    return result(
        12,
        ok,
        ev + ("" if ok else f" (limit {run.abort_stop_limit_s * 1000:.0f} ms, none after stop)"),
    )


def check_13(run: RunRecord) -> ItemResult:
    s = run.session("v1-auto")
    if s is None or s.status_code != 101:
        return not_applicable(13, "the v1 session did not run")
    if len(s.turns) < 2:
        first = s.turns[0] if s.turns else None
        if first is None or not first.answered:
            return result(13, False, "the first auto turn was not completed, so no next turn")
        return not_applicable(13, "second turn not run")
    t = s.turns[1]
    if t.t_tts_start is None:
        return result(13, False, f"listen start after tts stop was not answered ({t.note})")
    return result(
        13,
        True,
        f"next turn answered {(t.t_tts_start - t.t_listen_start) * 1000:.0f} ms after listen start",
    )
