"""Checkers of the server's MCP client (no working ASR needed): §9 item 16 and item 19."""

from __future__ import annotations

from typing import Any

from conformance.report import ItemResult
from conformance.server.items import judged, not_applicable, result
from conformance.server.records import RunRecord, SessionRecord


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


def _requests(s: SessionRecord) -> list[tuple[Any, str]]:
    """(id, method) of every MCP request (not notification) the server sent on ``s``."""
    out = []
    for e in s.received("text"):
        obj = e.obj or {}
        payload = obj.get("payload") if obj.get("type") == "mcp" else None
        if not isinstance(payload, dict) or not isinstance(payload.get("method"), str):
            continue
        if payload["method"].startswith("notifications") or payload.get("id") is None:
            continue
        out.append((payload.get("id"), payload["method"]))
    return out


def check_19(run: RunRecord) -> ItemResult:
    """MCP: "the request ID MUST NOT have been previously used by the requestor within the same
    session"; a server that reuses one cannot tell a late answer from the current one."""
    problems, counts = [], []
    for s in run.sessions:
        requests = _requests(s)
        if not requests:
            continue
        counts.append(f"{s.label}: ids {[i for i, _ in requests]}")
        seen: dict[Any, str] = {}
        for ident, method in requests:
            key = repr(ident)
            if key in seen:
                problems.append(f"{s.label}: id {ident!r} reused ({method} after {seen[key]})")
                break
            seen[key] = method
    if not counts:
        return not_applicable(19, "the server sent no MCP requests")
    if len(problems) > 1:
        problems = [f"{problems[0]} (and on {len(problems) - 1} more sessions)"]
    return judged(19, problems, counts[:2])
