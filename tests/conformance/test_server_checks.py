"""Unit tests of the pure server checkers on hand-made recordings (no sockets)."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest

from conformance.audio import encode_pcm, packet_duration_ms, silence_packets
from conformance.report import Group, ItemResult, Status, format_report, junit_xml, passed
from conformance.server.check import check_run
from conformance.server.check_audio import check_10
from conformance.server.check_liveness import check_15
from conformance.server.check_mcp import check_16
from conformance.server.check_ota import check_2, check_3
from conformance.server.check_session import check_6, check_11, check_17
from conformance.server.check_turns import check_12
from conformance.server.device_mcp import DeviceMcpServer
from conformance.server.records import (
    Event,
    HttpExchange,
    IdleRecord,
    RunRecord,
    SessionRecord,
    Turn,
)
from protocol.binary import encode_frame
from protocol.opus import OpusEncoder

HELLO = {
    "type": "hello",
    "transport": "websocket",
    "session_id": "abc",
    "audio_params": {"format": "opus", "sample_rate": 24000, "channels": 1, "frame_duration": 60},
}


def _packets(n: int, rate: int = 24000, frame_ms: int = 60) -> list[bytes]:
    t = np.arange(rate * frame_ms // 1000 * n) / rate
    pcm = (np.sin(2 * np.pi * 300 * t) * 8000).astype(np.int16)
    return encode_pcm(pcm, rate, frame_ms)[:n]


def _session(
    items: list[tuple[float, Any]],
    *,
    version: int = 1,
    hello: dict[str, Any] | None = None,
    label: str = "v1-auto",
) -> SessionRecord:
    """items: (t, dict → text in | bytes → binary in | 'ping')."""
    s = SessionRecord(
        label=label, version=version, purpose="test", status_code=101, t_hello_sent=0.0
    )
    s.events.append(Event(0.01, "in", "text", text=json.dumps(hello or HELLO)))
    for t, item in items:
        if isinstance(item, dict):
            s.events.append(Event(t, "in", "text", text=json.dumps(item)))
        elif isinstance(item, bytes):
            s.events.append(Event(t, "in", "binary", data=encode_frame(item, version)))
        else:
            s.events.append(Event(t, "in", "ping"))
    s.turns.append(
        Turn(label="t", mode="auto", t_listen_start=0.0, t_tts_start=1.0, t_tts_stop=9.0)
    )
    s.complete = True
    return s


def _run(*sessions: SessionRecord, **kw: Any) -> RunRecord:
    run = RunRecord(ws_url="ws://x/", items=tuple(range(1, 19)), **kw)
    run.sessions.extend(sessions)
    return run


def _reply(packets: list[bytes], start: float = 1.0, step: float = 0.06) -> list[tuple[float, Any]]:
    items: list[tuple[float, Any]] = [(start, {"type": "tts", "state": "start"})]
    items += [(start + 0.01 + i * step, p) for i, p in enumerate(packets)]
    items.append((start + 0.02 + len(packets) * step, {"type": "tts", "state": "stop"}))
    return items


def _ota(body: dict[str, Any], status: int = 200) -> RunRecord:
    return _run(
        ota_post=HttpExchange(
            "POST",
            "http://x/ota/",
            status=status,
            body=json.dumps(body),
            wall_ms=time.time() * 1000,
        )
    )


# ---------------------------------------------------------------------------- OTA


def test_item2_websocket_section() -> None:
    good = {"websocket": {"url": "ws://h/x/", "token": "t", "version": 2}}
    assert check_2(_ota(good)).status is Status.PASS
    assert check_2(_ota({"websocket": {"url": "http://h/"}})).status is Status.FAIL
    assert check_2(_ota({"websocket": {"url": "ws://h/", "version": 4}})).status is Status.FAIL
    assert check_2(_ota({"websocket": {"url": "ws://h/", "version": True}})).status is Status.FAIL
    assert "mqtt" in check_2(_ota({**good, "mqtt": {}})).text
    assert check_2(_ota(good, status=500)).status is Status.FAIL
    assert check_2(_run()).status is Status.NA


def test_item3_timestamp_must_be_ms_and_version_numeric() -> None:
    now = time.time()
    ok = {
        "server_time": {"timestamp": int(now * 1000), "timezone_offset": 480},
        "firmware": {"version": "2.4.2", "url": ""},
    }
    assert check_3(_ota(ok)).status is Status.PASS
    seconds = {"server_time": {"timestamp": int(now), "timezone_offset": 0}}
    result = check_3(_ota(seconds))
    assert result.status is Status.FAIL and "seconds" in result.text
    assert check_3(_ota({"server_time": {"timestamp": int(now * 1000)}})).status is Status.FAIL
    bad_fw = {**ok, "firmware": {"version": "1..2", "url": ""}}
    assert check_3(_ota(bad_fw)).status is Status.FAIL


# ---------------------------------------------------------------------------- hello


@pytest.mark.parametrize(
    ("hello", "words"),
    [
        ({k: v for k, v in HELLO.items() if k != "transport"}, "no 'transport'"),
        ({**HELLO, "transport": "udp"}, "transport must be"),
        ({**HELLO, "session_id": 'a"b'}, "JSON-safe"),
        ({**HELLO, "audio_params": {"sample_rate": 48000, "frame_duration": 60}}, "16000 or 24000"),
        ({**HELLO, "audio_params": {"sample_rate": 24000, "frame_duration": 20}}, "must be 60"),
        ({k: v for k, v in HELLO.items() if k != "audio_params"}, "audio_params missing"),
    ],
)
def test_item6_hello_problems(hello: dict[str, Any], words: str) -> None:
    result = check_6(_run(_session([], hello=hello)))
    assert result.status is Status.FAIL
    assert words in result.text


def test_item6_good_hello_and_late_hello() -> None:
    assert check_6(_run(_session([]))).status is Status.PASS
    late = _session([])
    late.events[0].t = 10.5
    assert "after 10.5 s" in check_6(_run(late)).text


# ---------------------------------------------------------------------------- replies


def test_item10_good_reply_passes() -> None:
    result = check_10(_run(_session(_reply(_packets(20)))))
    assert result.status is Status.PASS, result.text


def test_item10_burst_is_unpaced() -> None:
    result = check_10(_run(_session(_reply(_packets(60), step=0.001))))
    assert result.status is Status.FAIL and "not paced" in result.text


def test_item10_small_initial_burst_is_fine() -> None:
    items = _reply(_packets(30), step=0.06)
    burst = [(1.011 + i * 0.001, p) for i, p in enumerate(_packets(8))]
    result = check_10(_run(_session(items[:1] + burst + [(t + 0.5, p) for t, p in items[1:]])))
    assert result.status is Status.PASS, result.text


def test_item10_audio_outside_window() -> None:
    before = check_10(_run(_session([(0.5, _packets(1)[0]), *_reply(_packets(5))])))
    assert before.status is Status.FAIL and "before any tts start" in before.text
    after = check_10(_run(_session([*_reply(_packets(5)), (3.0, _packets(1)[0])])))
    assert after.status is Status.FAIL and "after tts stop" in after.text


def test_item10_wrong_frame_duration_and_framing() -> None:
    twenty = check_10(_run(_session(_reply(_packets(10, frame_ms=20)))))
    assert twenty.status is Status.FAIL and "not exactly 60 ms" in twenty.text
    s = _session(_reply(_packets(3)), version=3)
    s.events[2].data = b"\x00\x00\x00\x05abc"  # v3 header says 5 bytes, 3 follow
    framing = check_10(_run(s))
    assert framing.status is Status.FAIL and "not framed per v3" in framing.text


def test_item10_no_audio_is_not_applicable() -> None:
    """A server that spoke nothing (no greeting, no answered turn) has no audio to judge."""
    result = check_10(_run(_session([])))
    assert result.status is Status.NA and "spoke no audio" in result.text


def test_packet_duration_from_toc() -> None:
    enc = OpusEncoder(16000, 20)
    assert packet_duration_ms(enc.encode(np.zeros(320, np.int16))) == 20.0
    assert packet_duration_ms(_packets(1)[0]) == 60.0
    assert packet_duration_ms(b"") is None
    assert [len(p) for p in silence_packets(5, dtx_after=2)][2:] == [1, 1, 1]


# ---------------------------------------------------------------------------- fields, abort, pings


def test_item11_field_types() -> None:
    ok = _session(
        [
            (1.0, {"type": "tts", "state": "start"}),
            (1.1, {"type": "llm", "emotion": "happy"}),
            (1.2, {"type": "alert", "status": "s", "message": "m", "emotion": "sad"}),
        ]
    )
    assert check_11(_run(ok)).status is Status.PASS
    for bad in (
        {"type": "tts"},
        {"type": "stt", "text": 5},
        {"type": "llm", "text": "x"},
        {"type": "alert", "status": "s", "message": "m"},
        {"type": "tts", "state": "sentence_start"},
    ):
        assert check_11(_run(_session([(1.0, bad)]))).status is Status.FAIL, bad


def test_item12_abort_timing() -> None:
    s = _session(_reply(_packets(30)))
    turn = s.turns[0]
    turn.t_abort, turn.t_tts_start = 1.2, 1.0
    turn.t_tts_stop = 1.02 + 30 * 0.06
    slow = check_12(_run(s))
    assert slow.status is Status.FAIL and "ms after abort" in slow.text
    turn.t_abort = turn.t_tts_stop - 0.05
    assert check_12(_run(s)).status is Status.PASS


def test_item15_pings_and_idle() -> None:
    assert check_15(_run(_session([(1.0, "ping")]))).status is Status.FAIL
    assert check_15(_run(_session([]))).status is Status.NA
    idle = _run(_session([]), idle=IdleRecord(waited_s=130, limit_s=120, closed_after_s=60.0))
    assert check_15(idle).status is Status.PASS
    never = _run(_session([]), idle=IdleRecord(waited_s=130, limit_s=120))
    assert check_15(never).status is Status.FAIL


# ---------------------------------------------------------------------------- MCP, system


def _mcp(payload: Any) -> dict[str, Any]:
    return {"type": "mcp", "payload": payload}


def test_item16_mcp_rules() -> None:
    init = _mcp({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
    listing = _mcp({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"cursor": ""}})
    assert check_16(_run(_session([(1.0, init), (1.1, listing)]))).status is Status.PASS
    string_id = _mcp({"jsonrpc": "2.0", "id": "1", "method": "initialize"})
    assert "non-numeric id" in check_16(_run(_session([(1.0, string_id)]))).text
    assert "before initialize" in check_16(_run(_session([(1.0, listing)]))).text
    assert check_16(_run(_session([]))).status is Status.NA


def test_item16_next_cursor_must_be_followed() -> None:
    mcp = DeviceMcpServer()
    reply = mcp.handle(
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"cursor": ""}}
    )
    assert reply is not None and reply["result"]["nextCursor"]
    init = _mcp({"jsonrpc": "2.0", "id": 1, "method": "initialize"})
    s = _session([(1.0, init), (1.1, _mcp({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))])
    s.events.append(
        Event(
            1.2,
            "out",
            "text",
            text=json.dumps({"session_id": "abc", "type": "mcp", "payload": reply}),
        )
    )
    result = check_16(_run(s))
    assert result.status is Status.FAIL and "not followed" in result.text
    cursor = reply["result"]["nextCursor"]
    follow = _mcp({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"cursor": cursor}})
    s.events.append(Event(1.3, "in", "text", text=json.dumps(follow)))
    assert check_16(_run(s)).status is Status.PASS
    page2 = mcp.handle(follow["payload"])
    assert page2 is not None and "nextCursor" not in page2["result"]
    assert len(reply["result"]["tools"]) + len(page2["result"]["tools"]) == len(mcp.tools)


def test_item17_system_and_custom() -> None:
    assert (
        check_17(_run(_session([(1.0, {"type": "system", "command": "reboot"})]))).status
        is Status.PASS
    )
    assert (
        check_17(_run(_session([(1.0, {"type": "system", "command": "shutdown"})]))).status
        is Status.FAIL
    )
    assert (
        check_17(_run(_session([(1.0, {"type": "custom", "payload": {}})]))).status is Status.FAIL
    )


def test_report_and_junit() -> None:
    results = [
        ItemResult(1, "ota", Group.OTA, Status.PASS, ("ok",)),
        ItemResult(6, "hello", Group.PROTOCOL, Status.FAIL, ("no <transport>",)),
        ItemResult(7, "uplink", Group.TURN, Status.NA, ("no turn",)),
    ]
    text = format_report(results)
    assert "FAIL  6 [protocol] hello — no <transport>" in text
    assert "protocol: 0 passed, 1 failed, 0 not applicable" in text
    assert "1 passed, 1 failed, 1 not applicable" in text
    assert text.index("OTA checks") < text.index("Protocol checks") < text.index("Turn checks")
    assert not passed(results) and passed([results[0], results[2]])
    xml = junit_xml(results)
    assert 'failures="1"' in xml and "no &lt;transport&gt;" in xml


def test_items_fail_when_no_session_could_open() -> None:
    dead = SessionRecord(label="v1-auto", version=1, purpose="t", connect_error="refused")
    run = RunRecord(ws_url="ws://x/", items=(10, 12, 15, 16))
    run.sessions.append(dead)
    results = check_run(run)
    assert [r.status for r in results] == [Status.FAIL] * 4
    assert all("refused" in r.text for r in results)
    assert check_run(RunRecord(ws_url="ws://x/", items=(10,)))[0].status is Status.NA
