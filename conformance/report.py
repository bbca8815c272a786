"""One result type and one formatter for both halves of the suite (server and device checks).

Every checklist item yields an :class:`ItemResult`: its number, title, :class:`Group`, a
:class:`Status` and short evidence (what was seen or measured, also after a failure). Reports are
plain text grouped by :class:`Group` (:func:`format_report`), JUnit XML (:func:`junit_xml`) or
JSON (:meth:`ItemResult.to_json`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET


class Status(enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    NA = "N/A"


class Group(enum.Enum):
    """What an item needs from the peer, so a failure says where to look."""

    OTA = "ota"
    """HTTP OTA/configuration endpoint."""
    PROTOCOL = "protocol"
    """WebSocket protocol rules that need no working speech recognition."""
    TURN = "turn"
    """Rules that can only be judged on a completed voice turn (needs a working ASR)."""
    DEVICE = "device"
    """A board or simulator, watched by the suite's harness server."""

    @property
    def heading(self) -> str:
        return _HEADINGS[self]


_HEADINGS = {
    Group.OTA: "OTA checks (HTTP)",
    Group.PROTOCOL: "Protocol checks (no working ASR needed)",
    Group.TURN: "Turn checks (need a completed voice turn)",
    Group.DEVICE: "Device checks",
}


@dataclass(frozen=True)
class ItemResult:
    """Outcome of one checklist item; ``evidence`` says what was seen (always, briefly)."""

    item: int
    title: str
    group: Group
    status: Status
    evidence: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The evidence as one line."""
        return "; ".join(self.evidence)

    def line(self) -> str:
        """``FAIL 10 [protocol] title — evidence`` on one line."""
        head = f"{self.status.value:<4} {self.item:>2} [{self.group.value}] {self.title}"
        return f"{head} — {self.text}" if self.evidence else head

    def to_json(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "title": self.title,
            "group": self.group.value,
            "status": self.status.value,
            "evidence": list(self.evidence),
        }


def make_result(
    item: int,
    title: str,
    group: Group,
    problems: Sequence[str],
    evidence: Sequence[str],
    *,
    applicable: bool = True,
) -> ItemResult:
    """N/A (with ``evidence`` as the reason), FAIL with the problems followed by what was
    measured, or PASS with ``evidence``."""
    if not applicable:
        return ItemResult(item, title, group, Status.NA, tuple(evidence))
    if problems:
        return ItemResult(item, title, group, Status.FAIL, (*problems, *evidence))
    return ItemResult(item, title, group, Status.PASS, tuple(evidence))


def passed(results: Sequence[ItemResult]) -> bool:
    """True when no applicable item failed (N/A items do not count)."""
    return all(r.status is not Status.FAIL for r in results)


def _counts(results: Sequence[ItemResult]) -> str:
    n = {s: sum(r.status is s for r in results) for s in Status}
    return f"{n[Status.PASS]} passed, {n[Status.FAIL]} failed, {n[Status.NA]} not applicable"


def format_report(results: Sequence[ItemResult]) -> str:
    """Items under one heading per group (in :class:`Group` order), then one count per group and
    the total, e.g. ``protocol: 9 passed, 2 failed, 0 not applicable``."""
    lines: list[str] = []
    groups = [g for g in Group if any(r.group is g for r in results)]
    for group in groups:
        lines.append(group.heading)
        lines += [f"  {r.line()}" for r in results if r.group is group]
    for group in groups if len(groups) > 1 else []:
        lines.append(f"{group.value}: {_counts([r for r in results if r.group is group])}")
    lines.append(_counts(results))
    return "\n".join(lines)


def junit_xml(results: Sequence[ItemResult], *, suite: str = "xiaozhi-conformance") -> str:
    """JUnit XML: one testcase per item (class = group), failures as <failure>, N/A as <skipped>."""
    root = ET.Element(
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(sum(r.status is Status.FAIL for r in results)),
        skipped=str(sum(r.status is Status.NA for r in results)),
    )
    for r in results:
        case = ET.SubElement(
            root,
            "testcase",
            classname=f"{suite}.{r.group.value}",
            name=f"item {r.item:02d}: {r.title}",
        )
        if r.status is Status.FAIL:
            ET.SubElement(case, "failure", message=r.text[:200]).text = r.text
        elif r.status is Status.NA:
            ET.SubElement(case, "skipped", message=r.text[:200])
        elif r.evidence:
            ET.SubElement(case, "system-out").text = r.text
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
