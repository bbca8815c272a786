"""Item results of a server conformance run: console lines and JUnit XML."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from xml.etree import ElementTree as ET

ITEM_TITLES: Final[dict[int, str]] = {
    1: "OTA endpoint answers POST (and GET) with HTTP 200 + JSON",
    2: "OTA websocket section (ws/wss url, token, version 1-3), no mqtt",
    3: "OTA server_time in ms + timezone_offset; numeric firmware.version",
    4: "OTA activation absent, or challenge + /activate 200/202",
    5: "WebSocket handshake: HTTP/1.1 101, no subprotocol/extension",
    6: "Server hello within 10 s: transport, session_id, audio_params",
    7: "Uplink binary v1/v2/v3, DTX packets, pre-roll burst, residual frames",
    8: "listen/abort/mcp/unknown types accepted without closing",
    9: "Endpointing: auto answers without listen stop, manual after stop",
    10: "Replies: tts start/stop framing, Opus packets, frame duration, pacing",
    11: "Field types: tts state, stt/sentence_start text, llm emotion, alert",
    12: "Abort during speech stops audio and sends tts stop promptly",
    13: "Auto mode: new listen start after tts stop gets the next turn",
    14: "TCP drop without Close frame, reconnect still served",
    15: "No server pings; idle sessions closed within 120 s",
    16: "MCP client: numeric ids, initialize first, nextCursor followed",
    17: "system only with command reboot; no custom",
    18: "MQTT variant (only when the OTA answer has mqtt)",
}
ALL_ITEMS: Final = tuple(ITEM_TITLES)


class Status(enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    NA = "N/A"


@dataclass(frozen=True)
class ItemResult:
    """Outcome of one checklist item; ``evidence`` says what was seen (always, briefly)."""

    item: int
    status: Status
    evidence: str = ""

    @property
    def title(self) -> str:
        return ITEM_TITLES.get(self.item, f"item {self.item}")

    def line(self) -> str:
        """``PASS  7 title — evidence`` on one line."""
        text = f"{self.status.value:<4} {self.item:>2} {self.title}"
        return f"{text} — {self.evidence}" if self.evidence else text


def passed(results: Sequence[ItemResult]) -> bool:
    """True when no applicable item failed (N/A items do not count)."""
    return all(r.status is not Status.FAIL for r in results)


def format_report(results: Sequence[ItemResult]) -> str:
    lines = [r.line() for r in results]
    counts = {s: sum(r.status is s for r in results) for s in Status}
    lines.append(
        f"{counts[Status.PASS]} passed, {counts[Status.FAIL]} failed, "
        f"{counts[Status.NA]} not applicable"
    )
    return "\n".join(lines)


def junit_xml(results: Sequence[ItemResult], *, suite: str = "xiaozhi-server-conformance") -> str:
    """JUnit XML: one testcase per item, failures as <failure>, N/A as <skipped>."""
    root = ET.Element(
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(sum(r.status is Status.FAIL for r in results)),
        skipped=str(sum(r.status is Status.NA for r in results)),
    )
    for r in results:
        case = ET.SubElement(
            root, "testcase", classname=suite, name=f"item {r.item:02d}: {r.title}"
        )
        if r.status is Status.FAIL:
            ET.SubElement(case, "failure", message=r.evidence[:200]).text = r.evidence
        elif r.status is Status.NA:
            ET.SubElement(case, "skipped", message=r.evidence[:200])
        elif r.evidence:
            ET.SubElement(case, "system-out").text = r.evidence
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def result(item: int, ok: bool, evidence: str) -> ItemResult:
    """PASS when ``ok`` else FAIL, with ``evidence``."""
    return ItemResult(item, Status.PASS if ok else Status.FAIL, evidence)


def not_applicable(item: int, why: str) -> ItemResult:
    return ItemResult(item, Status.NA, why)
