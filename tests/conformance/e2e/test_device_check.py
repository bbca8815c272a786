"""The §10 device checker, run against our simulator (all applicable items pass) and against a
deliberately wrong client (the checker must notice)."""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.client import connect

from conformance.device import DeviceCheckServer, HarnessConfig, check_device
from conformance.report import ItemResult, Status, format_report
from device.app import Device, DeviceOptions
from device.ota import OtaTimings
from device.selfcheck import run_conformance_flows

CHANNEL_TIMEOUT_S = 1.0
CONFIG = HarnessConfig(
    expected_retry_base_s=0.3,
    expected_activate_pending_s=0.3,
    expected_channel_timeout_s=CHANNEL_TIMEOUT_S,
    paced_s=0.4,
)


@pytest.fixture(scope="module")
def simulator_results() -> list[ItemResult]:
    import asyncio

    async def drive(server: DeviceCheckServer) -> None:
        opts = DeviceOptions(
            ota_url=server.ota_url,
            channel_timeout_s=CHANNEL_TIMEOUT_S,
            ota_timings=OtaTimings(retry_base_s=0.3, activate_pending_s=0.3, activate_other_s=0.3),
        )
        device = await Device.create(opts)
        try:
            await device.boot()
            await run_conformance_flows(device.controller, CHANNEL_TIMEOUT_S)
        finally:
            await device.close()

    return asyncio.run(check_device(drive, CONFIG))


def test_simulator_passes_every_applicable_item(simulator_results: list[ItemResult]) -> None:
    report = format_report(simulator_results)
    assert [r.item for r in simulator_results] == list(range(1, 18)), report
    status = {r.item: r.status for r in simulator_results}
    assert all(s is not Status.FAIL for s in status.values()), report
    assert [i for i, s in status.items() if s is Status.NA] == [8], report  # not wire-observable


def test_evidence_reports_what_was_measured(simulator_results: list[ItemResult]) -> None:
    by_item = {r.item: r.text for r in simulator_results}
    assert "retry" in by_item[2] and "/activate" in by_item[3]
    assert "wake word" in by_item[9] and "push-to-talk" in by_item[9]
    assert "after tts stop" in by_item[11]
    assert "new socket + hello" in by_item[15]
    assert "tools" in by_item[17]


async def test_checker_flags_a_library_client() -> None:
    """websockets' own client: wrong header order, spaced JSON, listen stop in auto mode."""

    async def drive(server: DeviceCheckServer) -> None:
        async with connect(server.ws_url, additional_headers={"Device-Id": "AA-BB"}) as ws:
            await ws.send(json.dumps({"type": "hello", "version": 1, "transport": "websocket"}))
            await ws.recv()
            await ws.send(
                json.dumps(
                    {"session_id": "conf-0", "type": "listen", "state": "start", "mode": "auto"}
                )
            )
            await ws.send('{"session_id":"conf-0","type":"listen","state":"stop"}')

    results = {r.item: r for r in await check_device(drive, HarnessConfig())}
    assert results[5].status is Status.FAIL  # header order / Host with port
    assert results[6].status is Status.FAIL  # hello keys
    assert results[7].status is Status.FAIL  # "type": "listen" with spaces
    assert results[14].status is Status.FAIL  # listen stop in auto, Close frame sent
    assert results[1].status is Status.FAIL  # Device-Id not a MAC
    assert results[2].status is Status.NA  # no OTA request
