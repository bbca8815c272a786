"""The server checker against a deliberately broken stub server (real sockets, real Opus)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance.report import Status, format_report
from conformance.server.check import check_run
from conformance.server.runner import run_server_checks
from tests.conformance.conftest import fast_config


async def _run(
    stub_factory: Any, items: tuple[int, ...], faults: dict[str, Any], **kw: Any
) -> dict[int, Any]:
    server = await stub_factory(**faults)
    results = check_run(await run_server_checks(fast_config(server, items, **kw)))
    print(format_report(results))
    return {r.item: r for r in results}


@pytest.mark.parametrize(
    ("faults", "items", "failing", "words"),
    [
        ({"audio_before_tts_start": True}, (10,), 10, "before any tts start"),
        ({"audio_after_tts_stop": True}, (10,), 10, "after tts stop"),
        ({"unpaced_burst": True}, (10,), 10, "not paced"),
        ({"ota_mqtt": True}, (2,), 2, "mqtt object present"),
        ({"firmware_version": "v1.0"}, (3,), 3, "not purely numeric"),
        ({"ignore_abort": True, "reply_repeat": 2}, (12,), 12, "after abort"),
        ({"ping_interval_s": 0.3}, (15,), 15, "server pings"),
    ],
)
async def test_fault_fails_its_item(
    stub_factory: Any, faults: dict[str, Any], items: tuple[int, ...], failing: int, words: str
) -> None:
    results = await _run(stub_factory, items, faults)
    assert results[failing].status is Status.FAIL
    assert words in results[failing].text


async def test_ota_mqtt_makes_item_18_applicable(stub_factory: Any) -> None:
    results = await _run(stub_factory, (2, 18), {"ota_mqtt": True})
    # The stub hands out an mqtt section but runs no broker: the exchange is tried and fails.
    assert results[18].status is Status.FAIL
    assert "MQTT CONNECT to 127.0.0.1:1883 failed" in results[18].text


async def test_idle_close_measured(stub_factory: Any) -> None:
    results = await _run(
        stub_factory, (15,), {"idle_close_s": 1.0}, idle_wait_s=3.0, idle_limit_s=2.0
    )
    assert results[15].status is Status.PASS, results[15].text
    assert "idle session closed 1." in results[15].text


async def test_idle_close_too_late_fails(stub_factory: Any) -> None:
    results = await _run(
        stub_factory, (15,), {"idle_close_s": 1.5}, idle_wait_s=1.0, idle_limit_s=0.5
    )
    assert results[15].status is Status.FAIL


async def test_well_behaved_stub_passes_everything(stub_factory: Any) -> None:
    results = await _run(stub_factory, tuple(range(1, 19)), {})
    failed = {n: r.text for n, r in results.items() if r.status is Status.FAIL}
    assert failed == {}
    assert {n for n, r in results.items() if r.status is Status.NA} == {15, 18}
    assert "tools/call ['self.get_device_status']" in results[16].text
    assert "max lead" in results[10].text


async def _cli(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "conformance",
        "server",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_cli_names_the_failing_item(stub_factory: Any) -> None:
    server = await stub_factory(hello_without_transport=True)
    code, out = await _cli(server.ws_url, "--item", "5", "--item", "6")
    assert code == 1, out
    lines = [line.strip() for line in out.splitlines()]
    line6 = next(line for line in lines if line.startswith("FAIL  6 [protocol] "))
    assert "no 'transport'" in line6
    assert any(line.startswith("PASS  5 [protocol] ") for line in lines)


async def test_cli_exit_0_and_junit(stub_factory: Any, tmp_path: Path) -> None:
    server = await stub_factory()
    junit = tmp_path / "report.xml"
    code, out = await _cli(
        server.ws_url,
        "--ota-url",
        server.ota_url,
        "--item",
        "1",
        "--item",
        "3",
        "--item",
        "6",
        "--item",
        "18",
        "--junit",
        str(junit),
    )
    assert code == 0, out
    assert "3 passed, 0 failed, 1 not applicable" in out
    xml = junit.read_text()
    assert 'tests="4"' in xml and 'failures="0"' in xml and "<skipped" in xml
