"""Results of the device checklist (protocol.md §10 items 1-17), in the suite's one result type."""

from __future__ import annotations

from collections.abc import Sequence

from conformance.report import Group, ItemResult, make_result

DEVICE_ITEMS = tuple(range(1, 18))


def judge(
    item: int,
    title: str,
    problems: Sequence[str],
    evidence: Sequence[str],
    applicable: bool = True,
) -> ItemResult:
    """An item's result: N/A, FAIL with the problems, or PASS with the evidence (device evidence
    states what held, so it is not repeated under a failure)."""
    shown = evidence if not problems or not applicable else []
    return make_result(item, title, Group.DEVICE, problems, shown, applicable=applicable)
