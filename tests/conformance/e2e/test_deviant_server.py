"""The server suite against a deliberately different server (tests/peers/deviant_server.py): each
planted deviation is reported under the protocol checks, and nothing else is.

Short limits keep it fast: the deviant closes idle sessions after 4 s against a 2 s limit (a
conformant one after 1 s), and pings every 1 s.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from conformance.cli import main
from conformance.report import Group, ItemResult, Status
from conformance.server.check import check_run
from conformance.server.items import PROTOCOL_ITEMS, TURN_ITEMS
from conformance.server.runner import RunConfig, run_server_checks
from tests.peers.deviant_server import DeviantConfig, DeviantServer
from tests.timing import scaled

IDLE_LIMIT_S = 2.0
DEVIANT = DeviantConfig(idle_close_s=4.0, ping_interval_s=1.0)
CONFORMANT = DeviantConfig.conformant(idle_close_s=1.0)
PLANTED = {10: "raw_opus_on_v2", 15: "ping_interval_s", 19: "reuse_mcp_ids", 20: "late_abort"}
"""The protocol item each deviation fails."""


def _config(server: DeviantServer, items: tuple[int, ...], **kw: Any) -> RunConfig:
    base: dict[str, Any] = dict(
        ws_url=server.ws_url,
        ota_url=server.ota_url,
        items=items,
        idle_limit_s=IDLE_LIMIT_S,
        idle_wait_s=scaled(IDLE_LIMIT_S + 4.0),
        answer_timeout_s=scaled(6.0),
        reply_timeout_s=scaled(8.0),
        greeting_wait_s=scaled(3.0),
        tail_silence_s=0.6,
        settle_s=0.15,
        burst_frames=10,
    )
    base.update(kw)
    return RunConfig(**base)


async def _check(cfg: DeviantConfig, items: tuple[int, ...], **kw: Any) -> dict[int, ItemResult]:
    async with DeviantServer(cfg) as server:
        run = await run_server_checks(_config(server, items, **kw))
    return {r.item: r for r in check_run(run)}


def _failed(results: dict[int, ItemResult], group: Group) -> set[int]:
    return {n for n, r in results.items() if r.group is group and r.status is Status.FAIL}


async def test_without_asr_every_deviation_is_a_protocol_failure_and_nothing_else() -> None:
    """ASR down (no turn is ever answered): still a full protocol verdict, with exactly the
    planted deviations failing, each with what was measured."""
    results = await _check(DEVIANT, (*PROTOCOL_ITEMS, *TURN_ITEMS), answer_timeout_s=scaled(3))
    protocol = {n: r for n, r in results.items() if r.group is Group.PROTOCOL}
    assert set(protocol) == set(PROTOCOL_ITEMS)
    assert all(r.status is not Status.NA for r in protocol.values()), protocol
    assert _failed(results, Group.PROTOCOL) == set(PLANTED), protocol
    assert _failed(results, Group.TURN) == set(TURN_ITEMS)  # no working ASR
    assert "not framed per v2" in results[10].text
    assert "pings, every 1.0 s" in results[15].text
    assert "idle session closed 4." in results[15].text  # measured after the ping failure
    assert "id 2 reused (tools/list after tools/list)" in results[19].text
    assert "ms after abort" in results[20].text
    assert "socket stayed open" in results[8].text and results[8].status is Status.PASS


async def test_working_deviant_passes_every_turn_check() -> None:
    """With turns answered, the turn checks pass and the protocol failures are still exactly
    the planted ones (abort during a reply is honoured at once; only the greeting is late)."""
    results = await _check(replace(DEVIANT, working=True), (*PROTOCOL_ITEMS, *TURN_ITEMS))
    assert _failed(results, Group.TURN) == set(), {n: results[n].text for n in TURN_ITEMS}
    assert _failed(results, Group.PROTOCOL) == set(PLANTED)
    assert results[12].status is Status.PASS


async def test_conformant_variant_passes_every_protocol_check() -> None:
    results = await _check(CONFORMANT, PROTOCOL_ITEMS)
    assert _failed(results, Group.PROTOCOL) == set(), {n: r.text for n, r in results.items()}
    assert results[20].status is Status.PASS and "ms after abort" in results[20].text
    assert "0 server pings" in results[15].text and "closed 1." in results[15].text


@pytest.mark.parametrize(
    ("deviation", "item"),
    [
        ({"raw_opus_on_v2": True}, 10),
        ({"ping_interval_s": 1.0}, 15),
        ({"idle_close_s": 4.0}, 15),
        ({"reuse_mcp_ids": True}, 19),
        ({"late_abort_in_greeting": True}, 20),
    ],
)
async def test_each_deviation_alone_fails_only_its_item(
    deviation: dict[str, Any], item: int
) -> None:
    results = await _check(replace(CONFORMANT, **deviation), PROTOCOL_ITEMS)
    assert _failed(results, Group.PROTOCOL) == {item}, results[item].text


def test_cli_output_against_the_deviant(capsys: pytest.CaptureFixture[str]) -> None:
    """What a user sees: failures under the protocol heading, the no-ASR note, exit code 1."""
    import asyncio
    import threading

    ready = threading.Event()
    stop: asyncio.Event | None = None
    urls: dict[str, str] = {}
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with DeviantServer(DEVIANT) as server:
            urls.update(ws=server.ws_url, ota=server.ota_url)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    assert ready.wait(scaled(30))
    try:
        limits = ["--idle-limit", str(IDLE_LIMIT_S), "--idle-wait", str(scaled(6))]
        waits = ["--answer-timeout", str(scaled(3)), "--greeting-wait", str(scaled(3))]
        code = main(["server", urls["ws"], "--ota-url", urls["ota"], *limits, *waits])
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(scaled(10))
        loop.close()
    out = capsys.readouterr().out
    print(out)
    assert code == 1
    protocol = out[out.index("Protocol checks") : out.index("Turn checks")]
    assert {f"FAIL {n:>2} [protocol]" for n in PLANTED} <= set(
        line.strip()[:18] for line in protocol.splitlines()
    )
    assert "protocol: 7 passed, 4 failed, 0 not applicable" in out
    assert "no voice turn was answered" in out
