"""Checkers of the OTA/config endpoint: protocol.md §9 items 1-4 and 18 (pure functions)."""

from __future__ import annotations

import re
from typing import Any

from conformance.report import ItemResult
from conformance.server.items import not_applicable, result
from conformance.server.records import RunRecord

DAY_MS = 86_400_000.0


def _ota(run: RunRecord, item: int) -> tuple[dict[str, Any] | None, ItemResult | None]:
    if run.ota_post is None:
        return None, not_applicable(item, "no --ota-url given")
    body = run.ota_post.json
    if run.ota_post.status != 200 or not isinstance(body, dict):
        return None, result(item, False, "no usable OTA answer (see item 1)")
    return body, None


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_1(run: RunRecord) -> ItemResult:
    post = run.ota_post
    if post is None:
        return not_applicable(1, "no --ota-url given")
    if post.error:
        return result(1, False, f"POST {post.url} failed: {post.error}")
    ok = post.status == 200 and isinstance(post.json, dict)
    shape = (
        "a JSON object"
        if isinstance(post.json, dict)
        else f"not a JSON object: {post.body[:120]!r}"
    )
    ev = f"POST → HTTP {post.status}, body is {shape}"
    get = run.ota_get
    if get is not None and get.error:
        ok = False
        ev += f"; plain GET failed ({get.error}): tolerate GET with any HTTP answer"
    elif get is not None and get.status is not None and get.status >= 500:
        ok = False
        ev += f"; plain GET → HTTP {get.status} (server error): tolerate GET"
    elif get is not None:
        got = "a JSON object" if isinstance(get.json, dict) else f"text {get.body[:60]!r}"
        ev += f"; plain GET tolerated (HTTP {get.status}, {got})"
    return result(1, ok, ev)


def check_2(run: RunRecord) -> ItemResult:
    body, bad = _ota(run, 2)
    if body is None:
        return bad or not_applicable(2, "")
    problems = []
    ws = body.get("websocket")
    if not isinstance(ws, dict):
        problems.append(f"no websocket object (got {ws!r})")
    else:
        url = ws.get("url")
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            problems.append(f"websocket.url must be a ws:// or wss:// string, got {url!r}")
        if "token" in ws and not isinstance(ws["token"], str):
            problems.append(f"websocket.token must be a string, got {ws['token']!r}")
        if "version" in ws:
            v = ws["version"]
            if isinstance(v, bool) or not isinstance(v, int) or v not in (1, 2, 3):
                problems.append(f"websocket.version must be the integer 1, 2 or 3, got {v!r}")
    if "mqtt" in body:
        problems.append("mqtt object present: a board then uses MQTT, not the WebSocket")
    return result(2, not problems, "; ".join(problems) or f"websocket={ws}")


def check_3(run: RunRecord) -> ItemResult:
    body, bad = _ota(run, 3)
    if body is None:
        return bad or not_applicable(3, "")
    problems = []
    st = body.get("server_time")
    if not isinstance(st, dict):
        problems.append(f"no server_time object (got {st!r})")
    else:
        ts, tz = st.get("timestamp"), st.get("timezone_offset")
        now_ms = run.ota_post.wall_ms if run.ota_post else 0.0
        if not isinstance(ts, int | float) or isinstance(ts, bool):
            problems.append(f"server_time.timestamp must be a number, got {ts!r}")
        elif abs(float(ts) - now_ms) > DAY_MS:
            unit = (
                " (looks like seconds, must be ms)"
                if abs(float(ts) * 1000 - now_ms) < DAY_MS
                else ""
            )
            problems.append(
                f"server_time.timestamp {ts} is not ms since the epoch near now {now_ms:.0f}{unit}"
            )
        if not _num(tz):
            problems.append(f"server_time.timezone_offset must be a number (minutes), got {tz!r}")
    fw = body.get("firmware")
    if fw is not None:
        version = fw.get("version") if isinstance(fw, dict) else None
        if version is not None and (
            not isinstance(version, str) or not re.fullmatch(r"\d+(\.\d+)*", version)
        ):
            problems.append(
                f"firmware.version {version!r} is not purely numeric dotted (board crashes)"
            )
    return result(3, not problems, "; ".join(problems) or f"server_time={st}, firmware={fw}")


def check_4(run: RunRecord) -> ItemResult:
    body, bad = _ota(run, 4)
    if body is None:
        return bad or not_applicable(4, "")
    act = body.get("activation")
    if act is None:
        return result(4, True, "no activation section")
    if (
        not isinstance(act, dict)
        or not isinstance(act.get("challenge"), str)
        or not act["challenge"]
    ):
        return result(4, False, f"activation without a challenge string: {act!r}")
    ex = run.activate
    if ex is None or ex.status not in (200, 202):
        got = "not tried" if ex is None else (ex.error or f"HTTP {ex.status}: {ex.body[:120]!r}")
        return result(4, False, f"POST <ota>/activate with body {{}} → {got} (need 200 or 202)")
    return result(4, True, f"activation challenge offered; /activate → HTTP {ex.status}")


def check_18(run: RunRecord) -> ItemResult:
    body = run.ota_post.json if run.ota_post else None
    if not isinstance(body, dict) or "mqtt" not in body:
        return not_applicable(18, "OTA answer has no mqtt section (WebSocket server)")
    mqtt = body["mqtt"]
    if not isinstance(mqtt, dict):
        return result(18, False, f"mqtt is not an object: {mqtt!r}")
    need = ("endpoint", "client_id", "username", "password", "publish_topic")
    missing = [k for k in need if not isinstance(mqtt.get(k), str)]
    if "keepalive" in mqtt and not _num(mqtt["keepalive"]):
        missing.append("keepalive (number)")
    note = "OTA fields only; the MQTT/UDP exchange itself is not exercised by this checker"
    return result(18, not missing, f"missing/invalid: {missing}; {note}" if missing else note)
