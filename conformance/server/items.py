"""The server checklist: protocol.md §9 items 1-18 plus the suite's own items 19-20.

Each item has a title and a :class:`~conformance.report.Group`: ``ota`` (HTTP), ``protocol``
(judged on any session, no working ASR needed: a server whose recogniser is down still gets a
full verdict here) or ``turn`` (needs a completed voice turn).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from conformance.report import Group, ItemResult, make_result


@dataclass(frozen=True)
class ItemSpec:
    title: str
    group: Group


ITEMS: Final[dict[int, ItemSpec]] = {
    1: ItemSpec("OTA endpoint answers POST with HTTP 200 + JSON (GET tolerated)", Group.OTA),
    2: ItemSpec("OTA websocket section (ws/wss url, token, version 1-3), no mqtt", Group.OTA),
    3: ItemSpec("OTA server_time in ms + timezone_offset; numeric firmware.version", Group.OTA),
    4: ItemSpec("OTA activation absent, or challenge + /activate 200/202", Group.OTA),
    5: ItemSpec("WebSocket handshake: HTTP/1.1 101, no subprotocol/extension", Group.PROTOCOL),
    6: ItemSpec("Server hello within 10 s: transport, session_id, audio_params", Group.PROTOCOL),
    7: ItemSpec("Uplink binary v1/v2/v3, DTX packets, pre-roll burst, residual frames", Group.TURN),
    8: ItemSpec("listen/abort/mcp/iot/unknown messages accepted without closing", Group.PROTOCOL),
    9: ItemSpec("Endpointing: auto answers without listen stop, manual after stop", Group.TURN),
    10: ItemSpec(
        "Server audio (greeting or reply): tts start/stop, framing, Opus, pacing", Group.PROTOCOL
    ),
    11: ItemSpec(
        "Field types: tts state, stt/sentence_start text, llm emotion, alert", Group.PROTOCOL
    ),
    12: ItemSpec("Abort during a reply stops audio and sends tts stop promptly", Group.TURN),
    13: ItemSpec("Auto mode: new listen start after tts stop gets the next turn", Group.TURN),
    14: ItemSpec("TCP drop without Close frame; the reconnect gets a session", Group.PROTOCOL),
    15: ItemSpec("No server pings; idle sessions closed within the limit (120 s)", Group.PROTOCOL),
    16: ItemSpec("MCP client: numeric ids, initialize first, nextCursor followed", Group.PROTOCOL),
    17: ItemSpec("system only with command reboot; no custom", Group.PROTOCOL),
    18: ItemSpec("MQTT variant (only when the OTA answer has mqtt)", Group.OTA),
    19: ItemSpec("MCP request ids never reused within a session", Group.PROTOCOL),
    20: ItemSpec("Abort during a greeting stops it and sends tts stop promptly", Group.PROTOCOL),
}
ALL_ITEMS: Final = tuple(ITEMS)
PROTOCOL_ITEMS: Final = tuple(n for n, s in ITEMS.items() if s.group is Group.PROTOCOL)
TURN_ITEMS: Final = tuple(n for n, s in ITEMS.items() if s.group is Group.TURN)


def judged(
    item: int, problems: Sequence[str], evidence: Sequence[str] = (), *, applicable: bool = True
) -> ItemResult:
    """FAIL with ``problems`` then ``evidence`` (measurements), or PASS/N/A with ``evidence``."""
    spec = ITEMS[item]
    return make_result(
        item, spec.title, spec.group, list(problems), list(evidence), applicable=applicable
    )


def result(item: int, ok: bool, evidence: str) -> ItemResult:
    """PASS when ``ok`` else FAIL, with one line of evidence."""
    return judged(item, [] if ok else [evidence], [evidence] if ok else [])


def not_applicable(item: int, why: str) -> ItemResult:
    return judged(item, [], [why], applicable=False)
