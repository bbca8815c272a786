"""§10 items 4-8 (lazy socket, handshake, hello + session_id, exact JSON strings, state
machine), from the harness's WebSocket recordings."""

from __future__ import annotations

from typing import Any

from conformance.device.boot_items import ota_requests
from conformance.device.harness import DeviceCheckServer
from conformance.device.items import judge
from conformance.device.records import parsed_texts
from conformance.report import ItemResult
from protocol.errors import ProtocolError
from protocol.messages import decode_device_message, encode_message

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


def _is(msg: dict[str, Any], kind: str, state: str | None = None) -> bool:
    return msg.get("type") == kind and (state is None or msg.get("state") == state)


def item4(s: DeviceCheckServer) -> ItemResult:
    p: list[str] = []
    ota_done = max((r.t for r in ota_requests(s) if r.answer), default=None)
    for conn in s.conns:
        if ota_done is not None and conn.t_open < ota_done:
            p.append(f"socket {conn.index} opened before the OTA check ended")
        msgs = parsed_texts(conn)[1:]
        starts = [m for _, _, m in msgs if _is(m, "listen")]
        if not starts and not conn.binary_in_times():
            p.append(f"socket {conn.index} carried no conversation")
    ev = [f"{len(s.conns)} sockets, each opened for a conversation after boot"]
    return judge(4, "WebSocket only when a conversation starts", p, ev, bool(s.conns))


def item5(s: DeviceCheckServer) -> ItemResult:
    p: list[str] = []
    for conn in s.conns:
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
    return judge(5, "handshake exactly as §3.1", p[:5], ev, bool(s.conns))


def item6(s: DeviceCheckServer) -> ItemResult:
    p: list[str] = []
    prev_sid = ""
    for conn in s.conns:
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
        f"reused when a server hello omitted it (socket {s.cfg.omit_session_id_on})"
    ]
    return judge(6, "hello + session_id", p[:6], ev, bool(s.conns))


def item7(s: DeviceCheckServer) -> ItemResult:
    p: list[str] = []
    n = 0
    for conn in s.conns:
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


def item8(s: DeviceCheckServer) -> ItemResult:
    return judge(
        8,
        "state machine whitelist",
        [],
        ["not observable on the wire; covered by the simulator's unit tests"],
        False,
    )
