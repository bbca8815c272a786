"""Unit tests of the protocol checks that need no working ASR (items 1, 8, 14, 15, 19, 20) and of
the group each item belongs to, on hand-made recordings (no sockets)."""

from __future__ import annotations

import json
import time
from typing import Any

from conformance.report import Group, Status
from conformance.server.check import CHECKS, check_run
from conformance.server.check_audio import check_10, check_20
from conformance.server.check_liveness import check_15
from conformance.server.check_mcp import check_19
from conformance.server.check_ota import check_1
from conformance.server.check_session import check_8, check_14
from conformance.server.items import ITEMS, PROTOCOL_ITEMS, TURN_ITEMS
from conformance.server.records import (
    Event,
    Greeting,
    HttpExchange,
    IdleRecord,
    RunRecord,
    SessionRecord,
    Turn,
)

HELLO = json.dumps(
    {
        "type": "hello",
        "transport": "websocket",
        "session_id": "s",
        "audio_params": {"sample_rate": 24000, "frame_duration": 60},
    }
)


def _session(label: str, *events: tuple[float, Any], version: int = 1) -> SessionRecord:
    """events: (t, dict → text in | bytes → binary in | "ping")."""
    s = SessionRecord(label=label, version=version, purpose="t", status_code=101)
    s.events.append(Event(0.0, "in", "text", text=HELLO))
    for t, item in events:
        if isinstance(item, dict):
            s.events.append(Event(t, "in", "text", text=json.dumps(item)))
        elif isinstance(item, bytes):
            s.events.append(Event(t, "in", "binary", data=item, size=len(item)))
        else:
            s.events.append(Event(t, "in", "ping"))
    s.complete = True
    return s


def _run(*sessions: SessionRecord, **kw: Any) -> RunRecord:
    run = RunRecord(ws_url="ws://x/", items=tuple(ITEMS), **kw)
    run.sessions.extend(sessions)
    return run


def test_every_item_has_a_group_and_a_checker() -> None:
    assert set(CHECKS) == set(ITEMS)
    assert set(TURN_ITEMS) == {7, 9, 12, 13}
    assert {8, 10, 14, 15, 16, 19, 20} <= set(PROTOCOL_ITEMS)
    assert all(r.group is ITEMS[r.item].group for r in check_run(_run()))


def test_item1_a_plain_get_may_answer_text_but_not_crash() -> None:
    post = HttpExchange("POST", "http://x/ota/", status=200, body="{}", wall_ms=time.time() * 1e3)
    text = HttpExchange("GET", "http://x/ota/", status=200, body="OTA interface is running")
    assert check_1(_run(ota_post=post, ota_get=text)).status is Status.PASS
    assert "plain GET tolerated (HTTP 200" in check_1(_run(ota_post=post, ota_get=text)).text
    not_allowed = HttpExchange("GET", "http://x/ota/", status=405, body="")
    assert check_1(_run(ota_post=post, ota_get=not_allowed)).status is Status.PASS
    crash = HttpExchange("GET", "http://x/ota/", status=500, body="Traceback")
    assert check_1(_run(ota_post=post, ota_get=crash)).status is Status.FAIL
    dropped = HttpExchange("GET", "http://x/ota/", error="connection reset")
    assert check_1(_run(ota_post=post, ota_get=dropped)).status is Status.FAIL


def test_item8_needs_no_answered_turn() -> None:
    v2 = _session("v2-manual", version=2)
    v2.misc_sent = ['{"type":"weird"}']
    v2.events.append(Event(0.5, "out", "text", text='{"type":"weird"}'))
    v2.misc_survived = True
    v2.turns.append(Turn(label="v2 manual turn", mode="manual", t_listen_start=1.0))  # unanswered
    result = check_8(_run(v2))
    assert result.status is Status.PASS and "socket stayed open" in result.text
    v2.misc_survived, v2.closed_by, v2.t_closed, v2.close_code = False, "server", 0.6, 1002
    assert check_8(_run(v2)).status is Status.FAIL


def test_item14_is_judged_on_the_reconnect_not_on_its_turn() -> None:
    drop, again = _session("v3-drop", version=3), _session("v3-reconnect", version=3)
    again.turns.append(Turn(label="t", mode="auto", t_listen_start=1.0, note="no tts start"))
    result = check_14(_run(drop, again))
    assert result.status is Status.PASS and "judged by the turn checks" in result.text
    again.events.clear()
    assert check_14(_run(drop, again)).status is Status.FAIL


def test_item15_reports_the_ping_interval_and_the_idle_close_after_a_failure() -> None:
    pinged = _session("idle", *[(t, "ping") for t in (20.0, 40.0, 60.0)])
    idle = IdleRecord(waited_s=200, limit_s=120, closed_after_s=180.2, close_code=1000)
    result = check_15(_run(pinged, idle=idle))
    assert result.status is Status.FAIL
    assert "3 server pings, every 20.0 s" in result.text
    assert "idle session closed 180.2 s after the last server message" in result.text
    quiet = check_15(_run(_session("idle"), idle=IdleRecord(waited_s=130, limit_s=120)))
    assert quiet.status is Status.FAIL and "not closed within 130 s" in quiet.text
    assert "0 server pings" in quiet.text


def _mcp(ident: int, method: str) -> dict[str, Any]:
    return {"type": "mcp", "payload": {"jsonrpc": "2.0", "id": ident, "method": method}}


def test_item19_reused_request_id() -> None:
    good = _session("v1-auto", (1, _mcp(1, "initialize")), (2, _mcp(2, "tools/list")))
    assert check_19(_run(good)).status is Status.PASS
    again = _session(
        "v1-auto",
        (1, _mcp(1, "initialize")),
        (2, _mcp(2, "tools/list")),
        (3, _mcp(2, "tools/list")),
    )
    result = check_19(_run(again))
    assert result.status is Status.FAIL
    assert "id 2 reused (tools/list after tools/list)" in result.text
    other_socket = _session("v2-manual", (1, _mcp(1, "initialize")))
    assert check_19(_run(good, other_socket)).status is Status.PASS  # ids are per session
    assert check_19(_run(_session("v1-auto"))).status is Status.NA


def _wake(greeting: Greeting, *events: tuple[float, Any]) -> SessionRecord:
    s = _session("v2-wake", *events, version=2)
    s.greeting = greeting
    return s


def test_item20_abort_during_a_greeting() -> None:
    start, stop = {"type": "tts", "state": "start"}, {"type": "tts", "state": "stop"}
    frames = [(1.1 + i * 0.06, b"\x00" * 20) for i in range(25)]
    late = Greeting(t_detect=1.0, t_tts_start=1.05, t_first_audio=1.1, t_abort=1.15, t_tts_stop=2.6)
    result = check_20(_run(_wake(late, (1.05, start), *frames, (2.6, stop))))
    assert result.status is Status.FAIL and "tts stop 1450 ms after abort" in result.text
    prompt = Greeting(
        t_detect=1.0, t_tts_start=1.05, t_first_audio=1.1, t_abort=1.15, t_tts_stop=1.2
    )
    result = check_20(_run(_wake(prompt, (1.05, start), *frames[:2], (1.2, stop))))
    assert result.status is Status.PASS, result.text
    none = check_20(_run(_wake(Greeting(t_detect=1.0, note="no tts start within 4 s"))))
    assert none.status is Status.NA and "does not greet" in none.text


def test_item10_judges_a_greeting_without_any_turn() -> None:
    """Raw Opus on a v2 socket (no 16-byte header) is caught on greeting audio alone."""
    start, stop = {"type": "tts", "state": "start"}, {"type": "tts", "state": "stop"}
    raw = bytes([0x78]) + b"\x01" * 40  # an Opus packet, no v2 header
    s = _wake(Greeting(t_detect=1.0), (1.0, start), (1.1, raw), (1.2, stop))
    result = check_10(_run(s))
    assert result.status is Status.FAIL and "not framed per v2" in result.text


def test_a_server_without_asr_fails_only_turn_items() -> None:
    """Every session opened, nothing was ever answered: the turn items fail, the protocol items
    do not fail for that reason."""
    v1 = _session("v1-auto")
    v1.turns.append(Turn(label="v1 auto turn", mode="auto", t_listen_start=1.0, note="no tts"))
    v2 = _session("v2-manual", version=2)
    v2.misc_survived = True
    v2.turns.append(Turn(label="v2 manual turn", mode="manual", t_listen_start=2.0))
    drop, again = _session("v3-drop", version=3), _session("v3-reconnect", version=3)
    again.turns.append(Turn(label="v3 auto turn", mode="auto", t_listen_start=3.0))
    wake = _wake(Greeting(t_detect=4.0, note="no tts start"))
    idle = IdleRecord(waited_s=130, limit_s=120, closed_after_s=60.0, close_code=1000)
    results = check_run(_run(v1, v2, drop, again, wake, _session("idle"), idle=idle))
    failed = {r.item for r in results if r.status is Status.FAIL}
    assert failed == set(TURN_ITEMS)
    assert all(r.group is Group.TURN for r in results if r.status is Status.FAIL)
