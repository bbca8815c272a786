"""Pure checkers of a server run: one function per item, from a :class:`RunRecord` to a result.

``check_run(run)`` evaluates every item the run was asked for. The items live by subject:
OTA in :mod:`~conformance.server.check_ota`, handshake/messages in
:mod:`~conformance.server.check_session`, audio in :mod:`~conformance.server.check_audio`,
pings and idle close in :mod:`~conformance.server.check_liveness`, MCP in
:mod:`~conformance.server.check_mcp`, turns in :mod:`~conformance.server.check_turns`. Nothing
here touches a socket or a clock.
"""

from __future__ import annotations

from collections.abc import Callable

from conformance.report import Group, ItemResult, Status
from conformance.server.check_audio import check_10, check_20
from conformance.server.check_liveness import check_15
from conformance.server.check_mcp import check_16, check_19
from conformance.server.check_ota import check_1, check_2, check_3, check_4
from conformance.server.check_session import (
    check_5,
    check_6,
    check_8,
    check_11,
    check_14,
    check_17,
    hello_problems,
)
from conformance.server.check_turns import check_7, check_9, check_12, check_13
from conformance.server.items import ITEMS, result
from conformance.server.mqtt_check import check_18 as check_18_mqtt
from conformance.server.records import RunRecord

__all__ = ["CHECKS", "check_run", "hello_problems"]

CHECKS: dict[int, Callable[[RunRecord], ItemResult]] = {
    1: check_1,
    2: check_2,
    3: check_3,
    4: check_4,
    5: check_5,
    6: check_6,
    7: check_7,
    8: check_8,
    9: check_9,
    10: check_10,
    11: check_11,
    12: check_12,
    13: check_13,
    14: check_14,
    15: check_15,
    16: check_16,
    17: check_17,
    18: check_18_mqtt,
    19: check_19,
    20: check_20,
}


def check_run(run: RunRecord) -> list[ItemResult]:
    """One result per requested item, in item order. When no WebSocket session could be opened
    at all, every WebSocket item fails with the reason (instead of being N/A)."""
    out = []
    opened = any(s.server_hello is not None for s in run.sessions)
    for item in sorted(set(run.items)):
        if item not in CHECKS:
            continue
        res = CHECKS[item](run)
        websocket_item = ITEMS[item].group is not Group.OTA
        if res.status is Status.NA and websocket_item and run.sessions and not opened:
            first = run.sessions[0]
            why = first.connect_error or "no server hello"
            res = result(item, False, f"no WebSocket session could be opened ({why})")
        out.append(res)
    return out
