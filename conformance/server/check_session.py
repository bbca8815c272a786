"""Checkers of the session items that need no working ASR: §9 items 5, 6, 8, 11, 14, 17."""

from __future__ import annotations

import re
from typing import Any

from conformance.report import ItemResult
from conformance.server.items import judged, not_applicable, result
from conformance.server.records import RunRecord, SessionRecord

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


def check_8(run: RunRecord) -> ItemResult:
    s = run.session("v2-manual")
    if s is None:
        return not_applicable(8, "the v2 session was not run")
    if s.status_code != 101 or s.server_hello is None:
        return result(8, False, f"v2 session did not open: {s.connect_error or 'no hello'}")
    kinds = []
    for e in s.sent_texts():
        obj = e.obj or {}
        if e.text in s.misc_sent:
            extra = [str(obj[k]) for k in ("state", "mode", "reason") if k in obj]
            kinds.append(":".join([str(obj.get("type")), *extra]))
    if s.closed_by == "server" and s.t_closed is not None and not s.misc_survived:
        before = [e.text for e in s.sent_texts() if e.t <= s.t_closed][-1:]
        return result(
            8, False, f"server closed the socket (code {s.close_code}) after we sent {before}"
        )
    if s.misc_survived is None:
        return result(8, False, f"only {len(kinds)} of the messages could be sent: {kinds}")
    turn = s.turns[0] if s.turns else None
    after = "; the following manual turn was answered" if turn and turn.answered else ""
    return result(8, True, f"sent {kinds}; socket stayed open{after}")


def check_14(run: RunRecord) -> ItemResult:
    drop, again = run.session("v3-drop"), run.session("v3-reconnect")
    if drop is None and again is None:
        return not_applicable(14, "reconnect sessions not run")
    if drop is None or drop.server_hello is None:
        return result(14, False, "could not open the session to drop")
    if again is None or again.server_hello is None:
        why = (again.connect_error or "no hello") if again else "not run"
        return result(14, False, f"reconnect after the TCP drop failed: {why}")
    turn = again.turns[0] if again.turns else None
    served = (
        "; the turn on it was answered"
        if turn is not None and turn.answered
        else "; (its turn is judged by the turn checks)"
    )
    ev = "dropped TCP mid-utterance (no Close frame); the reconnect got a new session" + served
    return judged(14, [], [ev])


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
