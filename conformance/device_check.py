"""Check a device against protocol.md §10 items 1–17 from what :class:`DeviceCheckServer` saw.

``report = await check_device(drive, config)`` starts the server, awaits ``drive(ota_url)`` (which
must run the device through its flows: boot, click turn + barge-in, wake-word turn + barge-in,
push-to-talk turns), then returns one :class:`CheckResult` per item (pass / fail / n/a + evidence).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from conformance.device_flow_items import (
    item9,
    item10,
    item11,
    item12,
    item13,
    item14,
    item15,
    item16,
)
from conformance.device_mcp_items import check_mcp
from conformance.device_records import CheckResult, ConnRecord, judge, parsed_texts
from conformance.device_server import DeviceCheckServer, HarnessConfig
from protocol.errors import ProtocolError
from protocol.messages import decode_device_message, encode_message

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
WS_HEADER_ORDER = [
    "Host",
    "Authorization",
    "Client-Id",
    "Connection",
    "Device-Id",
    "Protocol-Version",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Upgrade",
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


def _is(msg: dict[str, Any], kind: str, state: str | None = None) -> bool:
    return msg.get("type") == kind and (state is None or msg.get("state") == state)


def _server_times(conn: ConnRecord, text: str) -> list[float]:
    return [e.t for e in conn.events if e.direction == "out" and e.data == text]


def _identity_problems(headers: dict[str, str], where: str) -> list[str]:
    """Device-Id must be a lowercase colon MAC, Client-Id a lowercase UUID v4."""
    problems = []
    device_id, client_id = headers.get("Device-Id"), headers.get("Client-Id")
    if not MAC_RE.match(device_id or ""):
        problems.append(f"{where}Device-Id {device_id!r} is not a lowercase colon MAC")
    if not UUID4_RE.match(client_id or ""):
        problems.append(f"{where}Client-Id {client_id!r} is not a lowercase UUID v4")
    return problems


class DeviceReport:
    """Builds the 17 results from one server's recordings."""

    def __init__(self, server: DeviceCheckServer) -> None:
        self.s, self.cfg = server, server.cfg
        self.ota = [r for r in server.http if r.path.endswith("/ota/")]
        self.act = [r for r in server.http if r.path.endswith("/activate")]

    def results(self) -> list[CheckResult]:
        return [
            self.item1(),
            self.item2(),
            self.item3(),
            self.item4(),
            self.item5(),
            self.item6(),
            self.item7(),
            self.item8(),
            *(f(self.s) for f in (item9, item10, item11, item12, item13, item14, item15, item16)),
            check_mcp(self.s.mcp, self._ua()),
        ]

    def _ua(self) -> str | None:
        return dict(self.ota[0].headers).get("User-Agent") if self.ota else None

    # 1 ------------------------------------------------------------------------------------
    def item1(self) -> CheckResult:
        p: list[str] = []
        ids: set[tuple[str | None, str | None]] = set()
        for rec in self.ota + self.act:
            h = dict(rec.headers)
            ids.add((h.get("Device-Id"), h.get("Client-Id")))
            p += _identity_problems(h, "")
            if not UA_RE.match(h.get("User-Agent", "")):
                p.append(f"User-Agent {h.get('User-Agent')!r} is not <board>/<x.y.z>")
            if not h.get("Accept-Language"):
                p.append("Accept-Language missing")
            if h.get("Activation-Version") != "1":
                p.append(f"Activation-Version {h.get('Activation-Version')!r} != '1'")
        for conn in self.s.conns:
            h = dict(conn.headers)
            ids.add((h.get("Device-Id"), h.get("Client-Id")))
            p += _identity_problems(h, "socket ")
        if len(ids) > 1:
            p.append(f"identity changed between requests: {sorted(map(str, ids))}")
        ev = [
            f"{len(self.ota) + len(self.act)} HTTP requests and {len(self.s.conns)} sockets "
            f"all carry {next(iter(ids)) if ids else None}"
        ]
        return judge(1, "identity headers, persistent and consistent", p[:5], ev, bool(ids))

    # 2 ------------------------------------------------------------------------------------
    def item2(self) -> CheckResult:
        p: list[str] = []
        if not self.ota:
            return judge(2, "boot OTA POST + retry", [], ["no OTA request seen"], False)
        for rec in self.ota:
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
            if body.get("mac_address") != h.get("Device-Id") or body.get("uuid") != h.get(
                "Client-Id"
            ):
                p.append("mac_address/uuid differ from Device-Id/Client-Id")
        ev = [f"{len(self.ota)} OTA POSTs, headers in firmware order, body types as §2.2"]
        fails = [r for r in self.ota if r.status != 200]
        if fails:
            nxt = self.ota[self.ota.index(fails[0]) + 1] if len(self.ota) > 1 else None
            if nxt is None:
                p.append("no retry after a failed OTA check")
            else:
                gap = nxt.t - fails[0].t
                base = self.cfg.expected_retry_base_s
                if not 0.8 * base <= gap <= 2.5 * base + 1:
                    p.append(f"retry after {gap:.2f} s, expected ≈ {base} s")
                ev.append(f"retry {gap:.2f} s after HTTP 500 (base {base} s)")
        return judge(2, "boot OTA POST + retry", p[:6], ev)

    # 3 ------------------------------------------------------------------------------------
    def item3(self) -> CheckResult:
        p: list[str] = []
        ev: list[str] = []
        if not any(r.answer for r in self.ota):
            return judge(3, "apply OTA answer + activation", [], ["no OTA answer"], False)
        for rec in self.act:
            if rec.body.strip() != b"{}":
                p.append(f"/activate body {rec.body[:60]!r} != {{}}")
            if [k for k, _ in rec.headers] != OTA_HEADER_ORDER:
                p.append("/activate headers differ from the OTA request's")
        with_act = [r for r in self.ota if r.answer and "activation" in r.answer]
        if with_act and not self.act:
            p.append("activation with a challenge but no /activate request")
        for a, b in zip(self.act, self.act[1:], strict=False):
            if a.status == 202:
                gap = b.t - a.t
                exp = self.cfg.expected_activate_pending_s
                if not 0.8 * exp <= gap <= 2 * exp + 1:
                    p.append(f"/activate retried {gap:.2f} s after 202, expected ≈ {exp} s")
                ev.append(f"/activate retry {gap:.2f} s after 202")
        done = [r for r in self.act if r.status == 200]
        if done:
            later = [r for r in self.ota if r.t > done[0].t]
            if not later:
                p.append("no OTA re-check after /activate returned 200")
            else:
                ev.append("OTA re-POSTed after /activate 200; loop ended when activation vanished")
        last = [r for r in self.ota if r.answer][-1].t
        if any(r.t > last for r in self.act):
            p.append("/activate after an answer without activation")
        if self.s.conns:
            h = dict(self.s.conns[0].headers)
            want = f"Bearer {self.cfg.token}"
            if h.get("Authorization") != want:
                p.append(
                    f"Authorization {h.get('Authorization')!r}: token from an earlier "
                    "answer must survive (NVS)"
                )
            else:
                ev.append("token from the first answer kept after later answers omitted it")
            if h.get("Protocol-Version") != str(self.cfg.protocol_version):
                p.append(f"Protocol-Version {h.get('Protocol-Version')} != OTA websocket.version")
            ev.append("WebSocket chosen (websocket section, no mqtt)")
        else:
            p.append("device never connected to the OTA-provided websocket url")
        return judge(3, "apply OTA answer + activation", p, ev)

    # 4 ------------------------------------------------------------------------------------
    def item4(self) -> CheckResult:
        p: list[str] = []
        ota_done = max((r.t for r in self.ota if r.answer), default=None)
        for conn in self.s.conns:
            if ota_done is not None and conn.t_open < ota_done:
                p.append(f"socket {conn.index} opened before the OTA check ended")
            msgs = parsed_texts(conn)[1:]
            starts = [m for _, _, m in msgs if _is(m, "listen")]
            if not starts and not conn.binary_in_times():
                p.append(f"socket {conn.index} carried no conversation")
        ev = [f"{len(self.s.conns)} sockets, each opened for a conversation after boot"]
        return judge(4, "WebSocket only when a conversation starts", p, ev, bool(self.s.conns))

    # 5 ------------------------------------------------------------------------------------
    def item5(self) -> CheckResult:
        p: list[str] = []
        for conn in self.s.conns:
            names = [k for k, _ in conn.headers]
            want = [n for n in WS_HEADER_ORDER if n != "Authorization" or n in names]
            if names != want:
                p.append(f"socket {conn.index}: header order {names}")
            h = dict(conn.headers)
            if ":" in h.get("Host", ""):
                p.append(f"Host {h['Host']!r} carries a port")
            if "Authorization" in h and not h["Authorization"].startswith("Bearer "):
                p.append("Authorization without Bearer prefix")
            if not conn.path.endswith("?from=conformance"):
                p.append(f"path/query not kept: {conn.path}")
            for e in conn.events:
                if e.direction == "in" and len(e.data) > 65535:
                    p.append("a frame larger than 65535 bytes")
                    break
        ev = [
            "headers Host(no port), then alphabetical; no Origin/extensions; masked frames "
            "(enforced by the server); path+query kept"
        ]
        return judge(5, "handshake exactly as §3.1", p[:5], ev, bool(self.s.conns))

    # 6 ------------------------------------------------------------------------------------
    def item6(self) -> CheckResult:
        p: list[str] = []
        prev_sid = ""
        for conn in self.s.conns:
            msgs = parsed_texts(conn)
            if not msgs or not _is(msgs[0][2], "hello"):
                p.append(f"socket {conn.index}: first message is not a hello")
                continue
            hello = msgs[0][2]
            order = [k for k in hello if k not in ("text_font",)]
            if order != ["type", "version", "features", "transport", "audio_params"]:
                p.append(f"hello key order {list(hello)}")
            if str(hello.get("version")) != dict(conn.headers).get("Protocol-Version"):
                p.append("hello version != Protocol-Version header")
            feats = hello.get("features", {})
            if feats.get("mcp") is not True:
                p.append("features.mcp is not true")
            if hello.get("audio_params") != {
                "format": "opus",
                "sample_rate": 16000,
                "channels": 1,
                "frame_duration": 60,
            }:
                p.append(f"audio_params {hello.get('audio_params')}")
            if "session_id" in hello:
                p.append("session_id in the device hello")
            want = conn.session_id if conn.session_id is not None else prev_sid
            for _, _, m in msgs[1:]:
                if m.get("type") in ("listen", "abort", "mcp") and m.get("session_id") != want:
                    p.append(f"socket {conn.index}: session_id {m.get('session_id')!r} != {want!r}")
                    break
            prev_sid = want
        ev = [
            "hello key order/version/features/audio_params as §3.3; session_id adopted, and "
            f"reused when a server hello omitted it (socket {self.cfg.omit_session_id_on})"
        ]
        return judge(6, "hello + session_id", p[:6], ev, bool(self.s.conns))

    # 7 ------------------------------------------------------------------------------------
    def item7(self) -> CheckResult:
        p: list[str] = []
        n = 0
        for conn in self.s.conns:
            for _, text, m in parsed_texts(conn)[1:]:
                if m.get("type") == "mcp":
                    continue
                n += 1
                try:
                    canon = encode_message(decode_device_message(text))
                except ProtocolError as exc:
                    p.append(f"undecodable {text[:80]!r}: {exc}")
                    continue
                if canon != text or not text.startswith('{"session_id":'):
                    p.append(f"{text!r} != firmware string {canon!r}")
        return judge(
            7,
            "exact outgoing JSON strings",
            p[:5],
            [f"{n} messages byte-identical to the firmware's strings"],
            n > 0,
        )

    # 8 ------------------------------------------------------------------------------------
    def item8(self) -> CheckResult:
        return judge(
            8,
            "state machine whitelist",
            [],
            ["not observable on the wire; covered by the simulator's unit tests"],
            False,
        )


Driver = Callable[[DeviceCheckServer], Awaitable[None]]


async def check_device(drive: Driver, config: HarnessConfig | None = None) -> list[CheckResult]:
    """Start the server, run ``drive(server)`` (use ``server.ota_url``), return the 17 results."""
    server = DeviceCheckServer(config)
    await server.start()
    try:
        await drive(server)
    finally:
        await server.stop()
    return DeviceReport(server).results()


def format_report(results: list[CheckResult]) -> str:
    """Plain-text report, one item per block."""
    lines = []
    for r in results:
        lines.append(f"{r.item:>2}. [{r.status.upper():>4}] {r.title}")
        lines += [f"      - {e}" for e in r.evidence]
    return "\n".join(lines)
