"""Every trigger's exact wire messages and the server-driven transitions (protocol.md §5.3)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np

from device.controller import DeviceController
from device.events import (
    AlertShown,
    DeviceEvent,
    EmotionChanged,
    SentenceStarted,
    StateChanged,
    SttReceived,
)
from protocol.enums import AbortReason, DeviceState
from tests.device.conftest import ScriptedServer

HELLO_V1 = (
    '{"type":"hello","version":1,"features":{"mcp":true,"glyph_push":false},'
    '"transport":"websocket","audio_params":{"format":"opus","sample_rate":16000,'
    '"channels":1,"frame_duration":60}}'
)
START_AUTO = '{"session_id":"S1","type":"listen","state":"start","mode":"auto"}'
START_MANUAL = '{"session_id":"S1","type":"listen","state":"start","mode":"manual"}'
START_REALTIME = '{"session_id":"S1","type":"listen","state":"start","mode":"realtime"}'
STOP = '{"session_id":"S1","type":"listen","state":"stop"}'
ABORT = '{"session_id":"S1","type":"abort"}'
ABORT_WAKE = '{"session_id":"S1","type":"abort","reason":"wake_word_detected"}'


async def until(pred: Any, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        for _ in range(100_000):
            if pred():
                return
            await asyncio.sleep(0.01)


async def speaking(server: ScriptedServer, ctl: DeviceController) -> None:
    await server.send('{"type":"tts","state":"start"}')
    await until(lambda: ctl.state == DeviceState.SPEAKING)


async def test_no_socket_at_boot_then_click_opens_hello_listen(
    server: ScriptedServer, make_device: Any
) -> None:
    ctl = await make_device()
    assert server.conns == [] and ctl.state == DeviceState.IDLE  # boot opens no socket
    await ctl.click()
    assert ctl.state == DeviceState.LISTENING
    await server.wait(lambda: len(server.last.texts) >= 2)
    assert server.last.texts[:2] == [HELLO_V1, START_AUTO]
    await server.wait(lambda: len(server.last.binaries) >= 3, 2)  # mic streaming
    assert ctl.channel.server_sample_rate_hz == 24000


async def test_click_while_listening_drops_tcp_without_close_frame(
    server: ScriptedServer, make_device: Any
) -> None:
    ctl = await make_device()
    await ctl.click()
    await server.wait(lambda: len(server.last.texts) >= 2)
    await ctl.click()
    assert ctl.state == DeviceState.IDLE
    await asyncio.wait_for(server.last.closed.wait(), 3)
    assert server.last.close_frame_from_device is False
    assert server.last.texts == [HELLO_V1, START_AUTO]  # never listen stop in auto


async def test_click_while_speaking_sends_abort_and_keeps_state(
    server: ScriptedServer, make_device: Any
) -> None:
    ctl = await make_device()
    await ctl.click()
    await speaking(server, ctl)
    await ctl.click()
    await server.wait(lambda: ABORT in server.last.texts)
    assert ctl.state == DeviceState.SPEAKING
    await server.send('{"type":"tts","state":"stop"}')
    await until(lambda: ctl.state == DeviceState.LISTENING)
    await server.wait(lambda: server.last.texts.count(START_AUTO) == 2)
    assert server.last.texts == [HELLO_V1, START_AUTO, ABORT, START_AUTO]


async def test_aec_click_is_realtime_and_tts_stop_sends_nothing(
    server: ScriptedServer, make_device: Any
) -> None:
    ctl = await make_device(aec=True)
    await ctl.click()
    await speaking(server, ctl)
    before = len(server.last.binaries)
    await server.wait(lambda: len(server.last.binaries) > before + 1, 2)  # mic keeps streaming
    await server.send('{"type":"tts","state":"stop"}')
    await until(lambda: ctl.state == DeviceState.LISTENING)
    after = len(server.last.binaries)
    await server.wait(lambda: len(server.last.binaries) > after + 5, 2)  # 0.3 s more uplink ...
    assert server.last.texts == [HELLO_V1, START_REALTIME]  # ... and no listen start


async def test_push_to_talk_keeps_socket_and_manual_tts_stop_goes_idle(
    server: ScriptedServer, make_device: Any
) -> None:
    ctl = await make_device()
    await ctl.press()
    await server.wait(lambda: len(server.last.binaries) >= 2)
    await ctl.release()
    assert ctl.state == DeviceState.IDLE
    await server.wait(lambda: STOP in server.last.texts)
    assert server.last.texts == [HELLO_V1, START_MANUAL, STOP]
    # the server may speak to an idle board whose socket is still open
    await speaking(server, ctl)
    await server.send('{"type":"tts","state":"stop"}')
    await until(lambda: ctl.state == DeviceState.IDLE)
    await ctl.press()  # same socket, no new hello
    await server.wait(lambda: server.last.texts.count(START_MANUAL) == 2)
    assert len(server.conns) == 1 and not server.last.closed.is_set()
    # press while speaking: abort + listen start manual
    await speaking(server, ctl)
    await ctl.press()
    await server.wait(lambda: server.last.texts.count(START_MANUAL) == 3)
    assert server.last.texts[-2:] == [ABORT, START_MANUAL]


async def test_wake_word_burst_detect_start(server: ScriptedServer, make_device: Any) -> None:
    ctl = await make_device()
    preroll = (np.sin(np.arange(16000) / 3) * 3000).astype(np.int16)  # 1 s → 17 frames
    await ctl.wake_word("hey computer", preroll)
    await server.wait(lambda: len(server.last.texts) >= 3)
    detect = '{"session_id":"S1","type":"listen","state":"detect","text":"hey computer"}'
    assert server.last.texts[:3] == [HELLO_V1, detect, START_AUTO]
    assert len(server.last.binaries) >= 17


async def test_wake_word_while_speaking_aborts_then_listens_after_drain(
    server: ScriptedServer, make_device: Any
) -> None:
    ctl = await make_device(realtime_playback=True)
    await ctl.click()
    await speaking(server, ctl)
    for _ in range(10):  # 0.6 s of audio queued
        await server.send(server.frame())
    await until(lambda: ctl.player.queued + ctl.player.played >= 10)
    await ctl.wake_word("hey computer")
    assert ctl.state == DeviceState.LISTENING
    await server.send(server.frame())  # late TTS frame: dropped (not speaking)
    await server.wait(lambda: server.last.texts.count(START_AUTO) == 2, 3)
    assert server.last.texts == [HELLO_V1, START_AUTO, ABORT_WAKE, START_AUTO]
    assert ctl.player.played <= 10


async def test_wake_word_while_listening_aborts_and_restarts(
    server: ScriptedServer, make_device: Any
) -> None:
    ctl = await make_device()
    await ctl.click()
    await ctl.wake_word("hey computer")
    await server.wait(lambda: len(server.last.texts) >= 4)
    assert server.last.texts == [HELLO_V1, START_AUTO, ABORT_WAKE, START_AUTO]


async def test_tts_start_ignored_while_connecting(server: ScriptedServer, make_device: Any) -> None:
    server.before_hello = ['{"type":"tts","state":"start"}']
    events: list[DeviceEvent] = []
    ctl = await make_device(on_event=events.append)
    await ctl.click()
    assert ctl.state == DeviceState.LISTENING
    await server.wait(lambda: START_AUTO in server.last.texts)
    states = [(e.old, e.new) for e in events if isinstance(e, StateChanged)]
    assert states[-2:] == [("idle", "connecting"), ("connecting", "listening")]
    assert all(new != "speaking" for _, new in states)


async def test_no_server_hello_times_out_to_idle(server: ScriptedServer, make_device: Any) -> None:
    server.hello = '{"type":"hello","transport":"udp"}'  # wrong transport → ignored
    events: list[DeviceEvent] = []
    ctl = await make_device(hello_timeout_s=0.3, on_event=events.append)
    await ctl.click()
    assert ctl.state == DeviceState.IDLE
    assert any(isinstance(e, AlertShown) and e.message == "server timeout" for e in events)
    await asyncio.wait_for(server.last.closed.wait(), 2)


async def test_server_close_goes_idle_and_next_click_reconnects(
    server: ScriptedServer, make_device: Any
) -> None:
    ctl = await make_device()
    await ctl.click()
    await server.wait(lambda: START_AUTO in server.last.texts)
    await server.last.ws.close()
    await until(lambda: ctl.state == DeviceState.IDLE)
    await ctl.click()
    await server.wait(lambda: len(server.conns) == 2 and START_AUTO in server.last.texts)


async def test_stale_channel_reopened_after_inactivity(
    server: ScriptedServer, make_device: Any
) -> None:
    ctl = await make_device(channel_timeout_s=0.4)
    await ctl.press()
    await ctl.release()
    await ctl.press()  # within the timeout: same socket
    await ctl.release()
    assert len(server.conns) == 1
    await asyncio.sleep(0.6)
    await ctl.press()  # stale: fresh socket + hello
    await server.wait(lambda: len(server.conns) == 2 and START_MANUAL in server.last.texts)
    assert server.last.texts[0] == HELLO_V1


async def test_downlink_only_in_speaking_and_session_kept(
    server: ScriptedServer, make_device: Any
) -> None:
    events: list[DeviceEvent] = []
    ctl = await make_device(on_event=events.append)
    await ctl.click()
    await server.send(server.frame())
    await server.send('{"type":"stt","text":"marker"}')  # handled after the frame
    await until(lambda: SttReceived("marker") in events)
    assert ctl.player.queued == 0 and ctl.player.played == 0
    await speaking(server, ctl)
    await server.send(server.frame())
    await until(lambda: ctl.player.played == 1)
    await ctl.click()  # abort
    await server.wait(lambda: ABORT in server.last.texts)


async def test_server_messages_handled_and_others_ignored(
    server: ScriptedServer, make_device: Any
) -> None:
    events: list[DeviceEvent] = []
    ctl = await make_device(on_event=events.append)
    await ctl.click()
    for text in (
        '{"type":"stt","text":"hello"}',
        '{"type":"llm","emotion":"happy","text":"x"}',
        '{"type":"tts","state":"sentence_start","text":"Hi."}',
        '{"type":"goodbye"}',
        '{"type":"custom","payload":{}}',
        '{"type":"nope"}',
        '{"no":"type"}',
        "not json",
        '{"type":"alert","status":"s","message":"m"}',
        '{"type":"alert","status":"s","message":"m","emotion":"sad"}',
    ):
        await server.send(text)
    await until(lambda: any(isinstance(e, AlertShown) for e in events))
    kinds = [
        (e.kind, e.emotion if isinstance(e, EmotionChanged | AlertShown) else e.text)
        for e in events
        if isinstance(e, SttReceived | EmotionChanged | SentenceStarted | AlertShown)
    ]
    assert kinds == [
        ("stt", "hello"),
        ("llm", "happy"),
        ("sentence_start", "Hi."),
        ("alert", "sad"),
    ]
    assert ctl.state == DeviceState.LISTENING and ctl.emotion == "happy"
    await server.send('{"type":"system","command":"reboot"}')
    await until(lambda: ctl.reboot_requested.is_set())
    assert ctl.state == DeviceState.IDLE
    await asyncio.wait_for(server.last.closed.wait(), 2)


async def test_binary_protocol_v3_and_token_header(
    server: ScriptedServer, make_device: Any
) -> None:
    ctl = await make_device(token="Token abc")
    ctl.identity.websocket["version"] = 3
    await ctl.click()
    await server.wait(lambda: len(server.last.binaries) >= 2)
    assert json.loads(server.last.texts[0])["version"] == 3
    headers = dict(server.last.headers)
    assert headers["Protocol-Version"] == "3" and headers["Authorization"] == "Token abc"
    frame = server.last.binaries[0]
    assert frame[0:2] == b"\x00\x00" and int.from_bytes(frame[2:4], "big") == len(frame) - 4
    await speaking(server, ctl)
    payload = server.frame()
    await server.send(b"\x00\x00" + len(payload).to_bytes(2, "big") + payload)
    await until(lambda: ctl.player.played == 1)
    assert AbortReason.WAKE_WORD_DETECTED.value == "wake_word_detected"
