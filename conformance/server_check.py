"""Pure checkers: one function per protocol.md §9 item, from a :class:`RunRecord` to a result.

``check_run(run)`` evaluates every item the run was asked for. This module holds the handshake,
message and MCP items (5, 6, 10, 11, 15-17); OTA items are in :mod:`conformance.server_check_ota`,
turn items in :mod:`conformance.server_check_turns`, reply audio in
:mod:`conformance.server_replies`. Nothing here touches a socket or a clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from conformance.report import ItemResult, Status, not_applicable, result
from conformance.server_check_ota import check_1, check_2, check_3, check_4, check_18
from conformance.server_check_turns import check_7, check_8, check_9, check_12, check_13, check_14
from conformance.server_replies import check_replies, collect_replies
from conformance.server_session import RunRecord, SessionRecord

__all__ = ["CHECKS", "check_run", "hello_problems"]

IDLE_JITTER_S = 1.0
"""Scheduling/network slack allowed on the idle-close measurement (s)."""
_SAFE_ID = re.compile(r"^[\x20-\x7e]*$")


# ---------------------------------------------------------------------------- 5, 6: handshake


def _opened(run: RunRecord) -> list[SessionRecord]:
    return [s for s in run.sessions if s.status_code is not None or s.connect_error]


def check_5(run: RunRecord) -> ItemResult:
    sessions = _opened(run)
    if not sessions:
        return not_applicable(5, "no WebSocket session was run")
    problems = []
    for s in sessions:
        headers = {k.lower(): v for k, v in s.response_headers.items()}
        if s.status_code != 101:
            problems.append(
                f"{s.label}: {s.connect_error or 'no 101'} (status {s.status_code} {s.reason})"
            )
        if "sec-websocket-extensions" in headers:
            problems.append(
                f"{s.label}: extension negotiated: {headers['sec-websocket-extensions']}"
            )
        if s.subprotocol or "sec-websocket-protocol" in headers:
            problems.append(f"{s.label}: subprotocol {headers.get('sec-websocket-protocol')}")
    first = sessions[0]
    ev = (
        f"{len(sessions)} handshakes; first: HTTP/1.1 {first.status_code} {first.reason}, "
        f"headers {sorted(first.response_headers)}"
    )
    return result(5, not problems, "; ".join(problems) or ev)


def hello_problems(s: SessionRecord, timeout_s: float = 10.0) -> list[str]:
    """Why the server hello of one session would not satisfy a board (empty = fine)."""
    hello = s.server_hello
    if hello is None:
        texts = [e.text for e in s.received("text")][:3]
        return [f"no server hello (received texts: {texts}, closed by {s.closed_by or 'nobody'})"]
    out = []
    delay = hello.t - (s.t_hello_sent if s.t_hello_sent is not None else hello.t)
    if delay > timeout_s:
        out.append(f"hello after {delay:.1f} s (> {timeout_s:.0f} s)")
    obj = hello.obj or {}
    if "transport" not in obj:
        out.append(f"hello has no 'transport' (board crashes): {hello.text}")
    elif obj["transport"] != "websocket":
        out.append(f"transport must be the string 'websocket', got {obj['transport']!r}")
    sid = obj.get("session_id")
    if not isinstance(sid, str) or not sid:
        out.append(f"session_id missing or not a string: {sid!r}")
    elif not _SAFE_ID.match(sid) or '"' in sid or "\\" in sid:
        out.append(f"session_id {sid!r} is not plain JSON-safe ASCII")
    ap = obj.get("audio_params")
    if not isinstance(ap, dict):
        out.append(f"audio_params missing: {hello.text}")
    else:
        if ap.get("sample_rate") not in (16000, 24000) or isinstance(ap.get("sample_rate"), bool):
            out.append(
                f"audio_params.sample_rate must be 16000 or 24000, got {ap.get('sample_rate')!r}"
            )
        if ap.get("frame_duration") != 60 or isinstance(ap.get("frame_duration"), bool):
            out.append(f"audio_params.frame_duration must be 60, got {ap.get('frame_duration')!r}")
    return out


def check_6(run: RunRecord) -> ItemResult:
    sessions = [s for s in run.sessions if s.status_code == 101]
    if not sessions:
        return (
            not_applicable(6, "no WebSocket session opened")
            if not run.sessions
            else result(6, False, "no handshake succeeded")
        )
    problems = [f"{s.label}: {p}" for s in sessions for p in hello_problems(s)]
    first = sessions[0].server_hello
    delays = [
        f"{(s.server_hello.t - (s.t_hello_sent or 0)) * 1000:.0f}"
        for s in sessions
        if s.server_hello
    ]
    extra = sum(sum(e.type == "hello" for e in s.received("text")) > 1 for s in sessions)
    ev = f"hello delays ms {delays}; first: {first.text if first else None}"
    if extra:
        ev += f"; note: {extra} session(s) got more than one hello"
    return result(6, not problems, "; ".join(problems) or ev)


# ---------------------------------------------------------------------------- 10, 11, 15-17


def check_10(run: RunRecord) -> ItemResult:
    sessions = [s for s in run.sessions if s.server_hello is not None]
    if not sessions:
        return not_applicable(10, "no session got a hello")
    replies = [r for s in sessions for r in collect_replies(s)]
    problems, summary = check_replies(sessions)
    if not replies and not problems:
        return result(10, False, "no spoken reply (tts start … tts stop) received")
    return result(
        10,
        not problems,
        "; ".join(problems[:6]) + (f" (+{len(problems) - 6} more)" if len(problems) > 6 else "")
        or summary,
    )


def _field_problem(obj: dict[str, Any]) -> str | None:
    kind = obj.get("type")
    if kind == "tts":
        if not isinstance(obj.get("state"), str):
            return "tts without a string state (old boards crash)"
        if obj["state"] == "sentence_start" and not isinstance(obj.get("text"), str):
            return "sentence_start without a string text"
    elif kind == "stt" and not isinstance(obj.get("text"), str):
        return "stt without a string text"
    elif kind == "llm" and not isinstance(obj.get("emotion"), str):
        return "llm without a string emotion"
    elif kind == "alert" and not all(
        isinstance(obj.get(k), str) for k in ("status", "message", "emotion")
    ):
        return "alert without string status/message/emotion"
    return None


def check_11(run: RunRecord) -> ItemResult:
    problems: list[str] = []
    counts: dict[str, int] = {}
    for s in run.sessions:
        for e in s.received("text"):
            obj = e.obj
            if obj is None:
                problems.append(f"{s.label}: text frame is not a JSON object: {e.text!r:.120}")
                continue
            kind = obj.get("type")
            counts[str(kind)] = counts.get(str(kind), 0) + 1
            bad = _field_problem(obj)
            if bad:
                problems.append(f"{s.label}: {bad}: {e.text!r:.160}")
    if not counts and not problems:
        return not_applicable(11, "no server messages received")
    return result(11, not problems, "; ".join(problems[:5]) or f"message counts {counts}")


def check_15(run: RunRecord) -> ItemResult:
    pings = [(s.label, e) for s in run.sessions for e in s.received("ping")]
    if pings:
        return result(
            15,
            False,
            f"{len(pings)} server pings received (first in {pings[0][0]}); "
            "boards ≤ v1.8.9 may corrupt frames",
        )
    idle = run.idle
    if idle is None:
        why = "0 server pings; idle close not measured (use --idle-wait ≥ 125)"
        return not_applicable(15, why)
    if idle.closed_after_s is None:
        return result(
            15,
            False,
            f"0 pings; server did not close the idle session within {idle.waited_s:.0f} s "
            f"{idle.note}",
        )
    ok = idle.closed_after_s <= idle.limit_s + IDLE_JITTER_S
    return result(
        15,
        ok,
        f"0 pings; idle session closed {idle.closed_after_s:.1f} s after the last server "
        f"message (limit {idle.limit_s:.0f} s)",
    )


def _list_cursors(s: SessionRecord, *, after: float) -> list[Any]:
    """``cursor`` params of the server's tools/list requests received after ``after``."""
    out = []
    for e in s.received("text"):
        payload = (e.obj or {}).get("payload") if e.t > after and e.type == "mcp" else None
        if isinstance(payload, dict) and payload.get("method") == "tools/list":
            params = payload.get("params")
            out.append(params.get("cursor") if isinstance(params, dict) else None)
    return out


def check_16(run: RunRecord) -> ItemResult:
    problems, notes, total = [], [], 0
    for s in run.sessions:
        initialized = False
        calls = []
        for e in s.received("text"):
            obj = e.obj
            if not obj or obj.get("type") != "mcp":
                continue
            total += 1
            p = obj.get("payload")
            if not isinstance(p, dict):
                problems.append(f"{s.label}: mcp payload is not an object")
                continue
            method, ident = p.get("method"), p.get("id")
            if p.get("jsonrpc") != "2.0":
                problems.append(f"{s.label}: jsonrpc is {p.get('jsonrpc')!r}, not '2.0'")
            if method is None:
                continue
            if not isinstance(method, str):
                problems.append(f"{s.label}: method is not a string")
                continue
            if method.startswith("notifications"):
                notes.append(f"notification {method} (ignored by boards)")
                continue
            if isinstance(ident, bool) or not isinstance(ident, int | float):
                problems.append(
                    f"{s.label}: {method} with non-numeric id {ident!r} (boards drop it)"
                )
            if method == "initialize":
                initialized = True
            elif method in ("tools/list", "tools/call") and not initialized:
                problems.append(f"{s.label}: {method} before initialize")
            if method == "tools/call":
                calls.append((p.get("params") or {}).get("name"))
        offered = [
            (e.t, (e.obj or {}).get("payload", {}).get("result", {}).get("nextCursor"))
            for e in s.sent_texts()
            if (e.obj or {}).get("type") == "mcp"
        ]
        for t, cursor in offered:
            if not cursor or not s.complete:
                continue
            if cursor not in _list_cursors(s, after=t):
                problems.append(f"{s.label}: nextCursor {cursor!r} not followed by tools/list")
        if calls:
            notes.append(f"{s.label}: tools/call {calls}")
    if total == 0:
        return not_applicable(16, "the server sent no mcp messages (note: device tools unused)")
    ev = f"{total} mcp messages" + (f"; {'; '.join(notes)}" if notes else "")
    return result(16, not problems, "; ".join(problems) or ev)


def check_17(run: RunRecord) -> ItemResult:
    problems, notes = [], []
    for s in run.sessions:
        for e in s.received("text"):
            obj = e.obj or {}
            if obj.get("type") == "system" and obj.get("command") != "reboot":
                problems.append(
                    f"{s.label}: system command {obj.get('command')!r} (only 'reboot' works)"
                )
            elif obj.get("type") == "system":
                notes.append(f"{s.label}: system reboot sent")
            elif obj.get("type") == "custom":
                problems.append(
                    f"{s.label}: custom message (only boards built with it enabled accept it)"
                )
            elif obj.get("type") == "goodbye":
                notes.append(f"{s.label}: goodbye on WebSocket (ignored by boards)")
    if not any(s.server_hello for s in run.sessions):
        return not_applicable(17, "no session opened")
    return result(17, not problems, "; ".join(problems + notes) or "no system/custom messages")


CHECKS: dict[int, Callable[[RunRecord], ItemResult]] = {
    1: check_1,
    2: check_2,
    3: check_3,
    4: check_4,
    5: check_5,
    6: check_6,
    7: check_7,
    8: check_8,
    9: check_9,
    10: check_10,
    11: check_11,
    12: check_12,
    13: check_13,
    14: check_14,
    15: check_15,
    16: check_16,
    17: check_17,
    18: check_18,
}


def check_run(run: RunRecord) -> list[ItemResult]:
    """One result per requested item, in item order."""
    out = []
    opened = any(s.server_hello is not None for s in run.sessions)
    for item in sorted(set(run.items)):
        if item not in CHECKS:
            continue
        res = CHECKS[item](run)
        if res.status is Status.NA and 5 <= item <= 17 and run.sessions and not opened:
            first = run.sessions[0]
            why = first.connect_error or "no server hello"
            res = result(item, False, f"no WebSocket session could be opened ({why})")
        out.append(res)
    return out
