"""Check a device against protocol.md §10 items 1-17 from what :class:`DeviceCheckServer` saw.

``results = await check_device(drive, config)`` starts the harness, awaits ``drive(server)``
(which must run the device through its flows: boot, click turn + barge-in, wake-word turn +
barge-in, push-to-talk turns; use ``server.ota_url``), then returns one
:class:`~conformance.report.ItemResult` per item. Items live in :mod:`.boot_items` (1-3),
:mod:`.session_items` (4-8), :mod:`.flow_items` (9-16) and :mod:`.mcp_items` (17).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from conformance.device.boot_items import item1, item2, item3, ota_requests
from conformance.device.flow_items import (
    item9,
    item10,
    item11,
    item12,
    item13,
    item14,
    item15,
    item16,
)
from conformance.device.harness import DeviceCheckServer
from conformance.device.harness_config import HarnessConfig
from conformance.device.mcp_items import check_mcp
from conformance.device.session_items import item4, item5, item6, item7, item8
from conformance.report import ItemResult, Status

Driver = Callable[[DeviceCheckServer], Awaitable[None]]
ITEM_CHECKS = (
    item1, item2, item3, item4, item5, item6, item7, item8,
    item9, item10, item11, item12, item13, item14, item15, item16,
)  # fmt: skip


NO_CONTACT = "the device never contacted the harness"


def device_results(server: DeviceCheckServer) -> list[ItemResult]:
    """The 17 results from one harness's recordings. Items that could not be judged say why:
    no contact at all, or no WebSocket session."""
    ota = ota_requests(server)
    user_agent = dict(ota[0].headers).get("User-Agent") if ota else None
    results = [*(check(server) for check in ITEM_CHECKS), check_mcp(server.mcp, user_agent)]
    why = NO_CONTACT if not server.http and not server.conns else None
    if why is None and not server.conns:
        why = "the device opened no WebSocket session"
    if why is None:
        return results
    return [replace(r, evidence=(why,)) if r.status is Status.NA else r for r in results]


async def check_device(drive: Driver, config: HarnessConfig | None = None) -> list[ItemResult]:
    """Start the harness, run ``drive(server)``, stop it and return the 17 results."""
    server = DeviceCheckServer(config)
    await server.start()
    try:
        await drive(server)
    finally:
        await server.stop()
    return device_results(server)
