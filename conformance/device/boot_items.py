"""§10 items 1-3 (identity, boot OTA + retry, OTA answer + activation), from the harness's
HTTP recordings."""

from __future__ import annotations

import itertools
import json
import re

from conformance.device.harness import DeviceCheckServer
from conformance.device.items import judge
from conformance.device.records import HttpRecord
from conformance.report import ItemResult

MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

UA_RE = re.compile(r"^[\w.-]+/\d+(\.\d+)+$")
OTA_HEADER_ORDER = [
    "Host",
    "Accept-Language",
    "Activation-Version",
    "Client-Id",
    "Content-Type",
    "Device-Id",
    "User-Agent",
    "Content-Length",
    "Connection",
]
SYSINFO_TYPES: list[tuple[str, type | tuple[type, ...]]] = [
    ("version", int),
    ("language", str),
    ("flash_size", int),
    ("minimum_free_heap_size", str),
    ("mac_address", str),
    ("uuid", str),
    ("chip_model_name", str),
    ("chip_info", dict),
    ("application", dict),
    ("partition_table", list),
    ("ota", dict),
    ("display", dict),
    ("board", dict),
]


def ota_requests(s: DeviceCheckServer) -> list[HttpRecord]:
    return [r for r in s.http if r.path.endswith("/ota/")]


def activate_requests(s: DeviceCheckServer) -> list[HttpRecord]:
    return [r for r in s.http if r.path.endswith("/activate")]


def identity_problems(headers: dict[str, str], where: str) -> list[str]:
    """Device-Id must be a lowercase colon MAC, Client-Id a lowercase UUID v4."""
    problems = []
    device_id, client_id = headers.get("Device-Id"), headers.get("Client-Id")
    if not MAC_RE.match(device_id or ""):
        problems.append(f"{where}Device-Id {device_id!r} is not a lowercase colon MAC")
    if not UUID4_RE.match(client_id or ""):
        problems.append(f"{where}Client-Id {client_id!r} is not a lowercase UUID v4")
    return problems


def item1(s: DeviceCheckServer) -> ItemResult:
    ota, act = ota_requests(s), activate_requests(s)
    p: list[str] = []
    ids: set[tuple[str | None, str | None]] = set()
    for rec in ota + act:
        h = dict(rec.headers)
        ids.add((h.get("Device-Id"), h.get("Client-Id")))
        p += identity_problems(h, "")
        if not UA_RE.match(h.get("User-Agent", "")):
            p.append(f"User-Agent {h.get('User-Agent')!r} is not <board>/<x.y.z>")
        if not h.get("Accept-Language"):
            p.append("Accept-Language missing")
        if h.get("Activation-Version") != "1":
            p.append(f"Activation-Version {h.get('Activation-Version')!r} != '1'")
    for conn in s.conns:
        h = dict(conn.headers)
        ids.add((h.get("Device-Id"), h.get("Client-Id")))
        p += identity_problems(h, "socket ")
    if len(ids) > 1:
        p.append(f"identity changed between requests: {sorted(map(str, ids))}")
    ev = [
        f"{len(ota) + len(act)} HTTP requests and {len(s.conns)} sockets "
        f"all carry {next(iter(ids)) if ids else None}"
    ]
    return judge(1, "identity headers, persistent and consistent", p[:5], ev, bool(ids))


def item2(s: DeviceCheckServer) -> ItemResult:
    ota = ota_requests(s)
    p: list[str] = []
    if not ota:
        return judge(2, "boot OTA POST + retry", [], ["no OTA request seen"], False)
    for rec in ota:
        names = [k for k, _ in rec.headers]
        if names != OTA_HEADER_ORDER:
            p.append(f"OTA header order {names}")
        if rec.method != "POST":
            p.append(f"method {rec.method}")
        try:
            body = json.loads(rec.body)
        except ValueError:
            p.append("body is not JSON")
            continue
        keys = [k for k, _ in SYSINFO_TYPES]
        if list(body)[: len(keys)] != keys:
            p.append(f"system-info key order {list(body)}")
        for key, typ in SYSINFO_TYPES:
            val = body.get(key)
            if not isinstance(val, typ) or isinstance(val, bool):
                p.append(f"{key} has type {type(val).__name__}")
        if not str(body.get("minimum_free_heap_size", "")).isdigit():
            p.append("minimum_free_heap_size is not a quoted decimal")
        h = dict(rec.headers)
        if body.get("mac_address") != h.get("Device-Id") or body.get("uuid") != h.get("Client-Id"):
            p.append("mac_address/uuid differ from Device-Id/Client-Id")
    ev = [f"{len(ota)} OTA POSTs, headers in firmware order, body types as §2.2"]
    fails = [r for r in ota if r.status != 200]
    if fails:
        nxt = ota[ota.index(fails[0]) + 1] if len(ota) > 1 else None
        if nxt is None:
            p.append("no retry after a failed OTA check")
        else:
            gap = nxt.t - fails[0].t
            base = s.cfg.expected_retry_base_s
            if not 0.8 * base <= gap <= 2.5 * base + 1:
                p.append(f"retry after {gap:.2f} s, expected ≈ {base} s")
            ev.append(f"retry {gap:.2f} s after HTTP 500 (base {base} s)")
    return judge(2, "boot OTA POST + retry", p[:6], ev)


def item3(s: DeviceCheckServer) -> ItemResult:
    ota, act = ota_requests(s), activate_requests(s)
    p: list[str] = []
    ev: list[str] = []
    if not any(r.answer for r in ota):
        return judge(3, "apply OTA answer + activation", [], ["no OTA answer"], False)
    for rec in act:
        if rec.body.strip() != b"{}":
            p.append(f"/activate body {rec.body[:60]!r} != {{}}")
        if [k for k, _ in rec.headers] != OTA_HEADER_ORDER:
            p.append("/activate headers differ from the OTA request's")
    with_act = [r for r in ota if r.answer and "activation" in r.answer]
    if with_act and not act:
        p.append("activation with a challenge but no /activate request")
    for a, b in itertools.pairwise(act):
        if a.status == 202:
            gap = b.t - a.t
            exp = s.cfg.expected_activate_pending_s
            if not 0.8 * exp <= gap <= 2 * exp + 1:
                p.append(f"/activate retried {gap:.2f} s after 202, expected ≈ {exp} s")
            ev.append(f"/activate retry {gap:.2f} s after 202")
    done = [r for r in act if r.status == 200]
    if done:
        later = [r for r in ota if r.t > done[0].t]
        if not later:
            p.append("no OTA re-check after /activate returned 200")
        else:
            ev.append("OTA re-POSTed after /activate 200; loop ended when activation vanished")
    last = [r for r in ota if r.answer][-1].t
    if any(r.t > last for r in act):
        p.append("/activate after an answer without activation")
    if s.conns:
        h = dict(s.conns[0].headers)
        want = f"Bearer {s.cfg.token}"
        if h.get("Authorization") != want:
            p.append(
                f"Authorization {h.get('Authorization')!r}: token from an earlier "
                "answer must survive (NVS)"
            )
        else:
            ev.append("token from the first answer kept after later answers omitted it")
        if h.get("Protocol-Version") != str(s.cfg.protocol_version):
            p.append(f"Protocol-Version {h.get('Protocol-Version')} != OTA websocket.version")
        ev.append("WebSocket chosen (websocket section, no mqtt)")
    else:
        p.append("device never connected to the OTA-provided websocket url")
    return judge(3, "apply OTA answer + activation", p, ev)
