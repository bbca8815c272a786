"""MQTT + UDP end to end (issue 21): the real server (embedded broker, UDP audio, real VAD/ASR/
dialogue/TTS) and the simulator as a board provisioned for MQTT, over loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from device.app import Device, DeviceOptions
from device.audio.sources import synthesize
from device.events import ChannelClosed, DeviceEvent, SttReceived, ThingChanged, TurnEnded
from device.mqtt_transport import MqttChannel
from device.scenario import Script, run_script
from server.app import Providers, Server
from tests.e2e.conftest import running_server
from tests.timing import scaled

pytestmark = pytest.mark.e2e

MQTT = {"enabled": True, "host": "127.0.0.1", "port": 0, "udp_host": "127.0.0.1", "udp_port": 0}


def mqtt_settings(tmp: Path, **extra: Any) -> dict[str, Any]:
    return {**MQTT, "secret_file": tmp / "mqtt-secret", **extra}


async def wait_until(pred: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + scaled(seconds)
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def board(
    server: Server, tmp: Path, events: list[DeviceEvent], **options: Any
) -> AsyncIterator[Device]:
    opts = DeviceOptions(
        ota_url=f"http://127.0.0.1:{server.http_port}/xiaozhi/ota/",
        state_file=tmp / "state.json",
        **options,
    )
    device = await Device.create(opts, events.append)
    try:
        await device.boot()
        yield device
    finally:
        await device.close()


def channel_of(device: Device) -> MqttChannel:
    channel = device.controller.channel
    assert isinstance(channel, MqttChannel), "the OTA answer's mqtt section selects MQTT + UDP"
    return channel


def speech_level_dbfs(path: Path) -> float:
    with wave.open(str(path)) as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), np.int16).astype(np.float64)
    return float(20 * np.log10(max(np.sqrt(np.mean(pcm**2)), 1e-9) / 32768))


async def test_voice_turn_and_command_over_mqtt_udp(providers: Providers, tmp_path: Path) -> None:
    events: list[DeviceEvent] = []
    wav = tmp_path / "reply.wav"
    async with running_server(providers, tmp_path, mqtt=mqtt_settings(tmp_path)) as server:
        gateway = server.mqtt
        assert gateway is not None
        async with board(server, tmp_path, events, sink=str(wav)) as device:
            channel = channel_of(device)
            assert channel.mqtt_connected  # MQTT at boot, before any conversation
            nvs = device.identity.mqtt
            assert nvs["endpoint"] == f"127.0.0.1:{server.mqtt_port}"
            assert nvs["keepalive"] == 240 and str(nvs["client_id"]).startswith("GID_xiaozhi@@@")
            utts = [await synthesize("turn on the lamp"), await synthesize("tell me a joke")]
            await run_script(device.controller, Script(utts, think_s=0.3, turn_timeout_s=20))
            # run_script hung up: the board published goodbye and the server session ended.
            await wait_until(lambda: server.sessions == 0, 5, "the session to end on goodbye")
            player = device.controller.player
            assert player.played > 10 and player.corrupt == 0
            assert channel.counts["udp-undecodable"] == 0 and channel.counts["udp-stale"] == 0
            assert channel.counts["received"] >= player.played
        counts = gateway.counts
    stts = [e.text for e in events if isinstance(e, SttReceived)]
    assert stts == ["turn on the lamp", "tell me a joke"], events
    assert ThingChanged("living_room_lamp", "power", True) in events
    turns = [e for e in events if isinstance(e, TurnEnded)]
    assert len(turns) == 2 and all(t.first_audio_ms is not None for t in turns)
    assert speech_level_dbfs(wav) > -40  # the reply was decrypted, decoded and is speech
    assert counts.get("mqtt-subscribe", 0) == 0  # the board never subscribed
    assert counts["udp-accepted"] > 20 and counts.get("udp-undecodable", 0) == 0
    assert counts.get("mqtt-no-session", 0) == 0  # the goodbye reached its session


async def test_abort_stops_the_reply_at_once(providers: Providers, tmp_path: Path) -> None:
    events: list[DeviceEvent] = []
    async with (
        running_server(providers, tmp_path, mqtt=mqtt_settings(tmp_path)) as server,
        board(server, tmp_path, events) as device,
    ):
        utt = await synthesize("tell me a joke")
        script = Script([utt], think_s=0.3, turn_timeout_s=20, abort_after_s=0.3)
        await run_script(device.controller, script)
    (turn,) = [e for e in events if isinstance(e, TurnEnded)]
    assert turn.abort_ms is not None and turn.abort_ms < 1000, turn


async def test_lost_and_reordered_datagrams_are_dropped_and_counted(
    providers: Providers, tmp_path: Path
) -> None:
    events: list[DeviceEvent] = []
    async with (
        running_server(providers, tmp_path, mqtt=mqtt_settings(tmp_path)) as server,
        board(server, tmp_path, events, udp_loss=0.2, udp_reorder=0.08) as device,
    ):
        utt = await synthesize("turn on the lamp")
        await run_script(device.controller, Script([utt], think_s=0.3, turn_timeout_s=20))
        sent = channel_of(device).counts
        assert server.mqtt is not None
        counts = server.mqtt.counts
    assert sent["lost-on-purpose"] > 0 and sent["reordered"] > 0, (sent, counts)
    assert counts["udp-stale"] == sent["reordered"]  # a late packet is older than the last
    assert counts["udp-gap"] > 0
    assert [e.text for e in events if isinstance(e, SttReceived)] == ["turn on the lamp"]
    assert ThingChanged("living_room_lamp", "power", True) in events


async def test_wrong_key_decodes_nothing_is_counted_and_the_session_survives(
    providers: Providers, tmp_path: Path
) -> None:
    events: list[DeviceEvent] = []
    async with (
        running_server(providers, tmp_path, mqtt=mqtt_settings(tmp_path)) as server,
        board(server, tmp_path, events) as device,
    ):
        assert server.mqtt is not None
        gateway, ctl = server.mqtt, device.controller
        channel = channel_of(device)
        channel.key_override = os.urandom(16)
        await ctl.click()
        ctl.source.play(await synthesize("turn on the lamp"))  # type: ignore[union-attr]
        await wait_until(
            lambda: gateway.counts.get("udp-undecodable", 0) >= 20, 10, "garbage to be counted"
        )
        source = ctl.source
        await wait_until(lambda: not source.busy, 10, "the garbled utterance to be sent")  # type: ignore[union-attr]
        assert server.sessions == 1  # no crash: the session went on through the garbage
        await ctl.hang_up()  # goodbye: the session ends with nothing heard
        await wait_until(lambda: server.sessions == 0, 5, "the session to end")
        assert gateway.counts.get("udp-accepted", 0) <= 3  # random bytes rarely look like Opus
        assert not [e for e in events if isinstance(e, SttReceived)]
        channel.key_override = None
        utt = await synthesize("turn on the lamp")
        await run_script(ctl, Script([utt], think_s=0.3, turn_timeout_s=20))
    assert [e.text for e in events if isinstance(e, SttReceived)] == ["turn on the lamp"]


async def test_idle_session_gets_goodbye_and_the_board_opens_a_new_one(
    providers: Providers, tmp_path: Path
) -> None:
    events: list[DeviceEvent] = []
    async with (
        running_server(
            providers,
            tmp_path,
            mqtt=mqtt_settings(tmp_path),
            websocket={"idle_timeout_s": 3.0},  # 120 s in production
        ) as server,
        board(server, tmp_path, events) as device,
    ):
        ctl = device.controller
        await ctl.press()  # push-to-talk: hello, listen start manual
        await ctl.release()  # listen stop: idle with the channel open, no traffic either way
        first = device.identity.session_id
        await wait_until(
            lambda: any(isinstance(e, ChannelClosed) for e in events), 10, "server goodbye"
        )
        closed = [e for e in events if isinstance(e, ChannelClosed)]
        assert closed[0].reason == "server goodbye"
        await wait_until(lambda: server.sessions == 0, 5, "the session to end")
        assert channel_of(device).mqtt_connected  # MQTT stays up; only the audio channel closed
        utt = await synthesize("tell me a joke")
        await run_script(ctl, Script([utt], mode="ptt", think_s=0.3, turn_timeout_s=20))
        assert device.identity.session_id not in ("", first)
    assert [e.text for e in events if isinstance(e, SttReceived)] == ["tell me a joke"]


async def _ota(port: int, mac: str) -> dict[str, Any]:
    headers = {"Device-Id": mac, "Client-Id": "0b5b6f2a-1111-4222-8333-444455556666"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{port}/xiaozhi/ota/", json={}, headers=headers) as reply,
    ):
        answer: dict[str, Any] = await reply.json()
    return answer


async def test_stock_paho_client_as_a_board_gets_the_hello_without_subscribing(
    providers: Providers, tmp_path: Path
) -> None:
    import paho.mqtt.client as paho

    ws_board, mqtt_board = "a0:b7:65:00:00:01", "a0:b7:65:00:00:02"
    settings = mqtt_settings(tmp_path, default_transport="websocket", devices={mqtt_board: "mqtt"})
    async with running_server(providers, tmp_path, mqtt=settings) as server:
        assert "mqtt" not in await _ota(server.http_port, ws_board)  # a mixed fleet
        assert server.health()["mqtt"] == {"boards": 0, "udp": {}}
        answer = (await _ota(server.http_port, mqtt_board))["mqtt"]
        host, port = answer["endpoint"].split(":")
        loop = asyncio.get_running_loop()
        got: asyncio.Future[tuple[str, bytes]] = loop.create_future()

        def deliver(topic: str, payload: bytes) -> None:
            if not got.done():
                got.set_result((topic, payload))

        def on_message(_c: Any, _u: Any, message: Any) -> None:
            loop.call_soon_threadsafe(deliver, message.topic, message.payload)

        from paho.mqtt.enums import CallbackAPIVersion

        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=answer["client_id"])
        client.username_pw_set(answer["username"], answer["password"])
        client.on_message = on_message
        client.connect(host, int(port), keepalive=answer["keepalive"])
        client.loop_start()
        try:
            hello = {"type": "hello", "version": 3, "transport": "udp", "features": {"mcp": True}}
            client.publish(answer["publish_topic"], json.dumps(hello), qos=0)
            topic, payload = await asyncio.wait_for(got, scaled(5))
        finally:
            client.disconnect()
            client.loop_stop()
    reply = json.loads(payload)
    assert topic == answer["subscribe_topic"]
    assert reply["type"] == "hello" and reply["transport"] == "udp"
    udp = reply["udp"]
    assert (udp["server"], udp["port"]) == ("127.0.0.1", server.udp_port)
    assert len(bytes.fromhex(udp["key"])) == 16 and bytes.fromhex(udp["nonce"])[0] == 0x01


async def test_wrong_password_is_refused(providers: Providers, tmp_path: Path) -> None:
    import aiomqtt

    async with running_server(providers, tmp_path, mqtt=mqtt_settings(tmp_path)) as server:
        answer = (await _ota(server.http_port, "a0:b7:65:00:00:03"))["mqtt"]
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(
                "127.0.0.1",
                server.mqtt_port,
                identifier=answer["client_id"],
                username=answer["username"],
                password="not-the-password",
                timeout=scaled(5),
            ):
                pass
        assert server.mqtt is not None and server.mqtt.counts["mqtt-auth-refused"] == 1


async def test_external_auto_subscribing_broker(providers: Providers, tmp_path: Path) -> None:
    """``mqtt.broker: external``: the server is a client of an EMQX-like broker (stand-in)."""
    from tests.server.transport.emqx_like import emqx_like_broker

    events: list[DeviceEvent] = []
    async with emqx_like_broker() as broker_port:
        mqtt = {
            "enabled": True,
            "broker": "external",
            "external_host": "127.0.0.1",
            "external_port": broker_port,
            "public_host": "127.0.0.1",
            "udp_host": "127.0.0.1",
            "udp_port": 0,
            "secret_file": tmp_path / "secret",
        }
        async with (
            running_server(providers, tmp_path, mqtt=mqtt) as server,
            board(server, tmp_path, events) as device,
        ):
            assert device.identity.mqtt["endpoint"] == f"127.0.0.1:{broker_port}"
            channel_of(device)
            utt = await synthesize("turn on the lamp")
            await run_script(device.controller, Script([utt], think_s=0.3, turn_timeout_s=20))
            await wait_until(lambda: server.sessions == 0, 5, "the session to end on goodbye")
    assert [e.text for e in events if isinstance(e, SttReceived)] == ["turn on the lamp"]
    assert ThingChanged("living_room_lamp", "power", True) in events


async def test_conformance_item_18_passes_against_this_server(
    providers: Providers, tmp_path: Path
) -> None:
    from conformance.report import Status
    from conformance.server.check import check_run
    from conformance.server.runner import RunConfig, run_server_checks

    idle_s = 8.0  # the server's idle timeout here (120 s in production): the goodbye comes fast
    async with running_server(
        providers, tmp_path, mqtt=mqtt_settings(tmp_path), websocket={"idle_timeout_s": idle_s}
    ) as server:
        cfg = RunConfig(
            ws_url=f"ws://127.0.0.1:{server.ws_port}/xiaozhi/v1/",
            ota_url=f"http://127.0.0.1:{server.http_port}/xiaozhi/ota/",
            items=(2, 15, 18),
            idle_limit_s=idle_s + 1,
            idle_wait_s=scaled(idle_s + 4),
        )
        run = await run_server_checks(cfg)
        assert server.mqtt is not None
        counts = server.mqtt.counts
    results = {r.item: r for r in check_run(run)}
    assert results[18].status is Status.PASS, (results[18].text, counts)
    text = results[18].text
    assert "without SUBSCRIBE" in text and "goodbye with the session id" in text
    assert results[2].status is Status.FAIL  # item 2 is the WebSocket-mode rule: no mqtt object


def _mqtt_string(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def _mqtt_packet(kind: int, body: bytes) -> bytes:
    size, length = len(body), b""
    while True:
        byte, size = size % 128, size // 128
        length += bytes([byte | (0x80 if size else 0)])
        if not size:
            return bytes([kind]) + length + body


async def test_keepalive_silence_closes_the_connection_and_the_session(
    providers: Providers, tmp_path: Path
) -> None:
    """A raw MQTT 3.1.1 board that stops talking (no PINGREQ) is cut after 1.5 × keep-alive."""
    async with running_server(providers, tmp_path, mqtt=mqtt_settings(tmp_path)) as server:
        answer = (await _ota(server.http_port, "a0:b7:65:00:00:04"))["mqtt"]
        reader, writer = await asyncio.open_connection("127.0.0.1", server.mqtt_port)
        flags, keepalive = 0xC2, 1  # username, password, clean session; keep-alive 1 s
        connect = (
            _mqtt_string("MQTT")
            + bytes([4, flags])
            + keepalive.to_bytes(2, "big")
            + _mqtt_string(answer["client_id"])
            + _mqtt_string(answer["username"])
            + _mqtt_string(answer["password"])
        )
        writer.write(_mqtt_packet(0x10, connect))
        assert await asyncio.wait_for(reader.readexactly(4), scaled(5)) == b"\x20\x02\x00\x00"
        hello = json.dumps({"type": "hello", "version": 3, "transport": "udp"}).encode()
        writer.write(_mqtt_packet(0x30, _mqtt_string(answer["publish_topic"]) + hello))
        t0 = time.monotonic()
        await wait_until(lambda: server.sessions == 1, 5, "the session to start")
        rest = await asyncio.wait_for(reader.read(), scaled(10))  # the server hello, then EOF
        closed_after = time.monotonic() - t0
        writer.close()
        await wait_until(lambda: server.sessions == 0, 5, "the session to end")
    assert b'"transport":"udp"' in rest
    assert 1.4 <= closed_after <= scaled(4.0), closed_after


async def test_board_reconnects_once_when_idle_and_else_on_demand(
    providers: Providers, tmp_path: Path
) -> None:
    """The firmware's one-shot reconnect timer after an MQTT drop (shortened here)."""
    events: list[DeviceEvent] = []
    async with running_server(providers, tmp_path, mqtt=mqtt_settings(tmp_path)) as server:
        port = server.mqtt_port
        opts = DeviceOptions(
            ota_url=f"http://127.0.0.1:{server.http_port}/xiaozhi/ota/",
            state_file=tmp_path / "state.json",
        )
        device = await Device.create(opts, events.append)
        await device.boot()
        channel = channel_of(device)
        channel.reconnect_s = 0.5
    try:
        await wait_until(lambda: not channel.mqtt_connected, 5, "the MQTT drop")
        restarted = mqtt_settings(tmp_path, port=port)  # same port and secret: same credentials
        async with running_server(providers, tmp_path, mqtt=restarted) as server:
            await wait_until(lambda: channel.mqtt_connected, 5, "the timer's reconnect")
            await wait_until(lambda: len(server.mqtt.boards) == 1 if server.mqtt else False, 5, "")
            channel.reconnect_s = 2.0
            channel.is_idle = lambda: False  # busy when the timer fires: no reconnect then
        await wait_until(lambda: not channel.mqtt_connected, 5, "the second drop")
        assert channel._reconnect is not None  # armed
        async with running_server(providers, tmp_path, mqtt=restarted) as server:
            await wait_until(lambda: channel._reconnect is None, 5, "the timer to fire")
            assert not channel.mqtt_connected
            utt = await synthesize("turn on the lamp")  # a conversation reconnects on demand
            await run_script(device.controller, Script([utt], think_s=0.3, turn_timeout_s=20))
    finally:
        await device.close()
    assert [e.text for e in events if isinstance(e, SttReceived)] == ["turn on the lamp"]


async def test_a_board_can_neither_speak_for_nor_listen_to_another(
    providers: Providers, tmp_path: Path
) -> None:
    import aiomqtt

    async with running_server(providers, tmp_path, mqtt=mqtt_settings(tmp_path)) as server:
        a = (await _ota(server.http_port, "a0:b7:65:00:00:0a"))["mqtt"]
        b = (await _ota(server.http_port, "a0:b7:65:00:00:0b"))["mqtt"]

        def client(creds: dict[str, Any]) -> aiomqtt.Client:
            return aiomqtt.Client(
                "127.0.0.1",
                server.mqtt_port,
                identifier=creds["client_id"],
                username=creds["username"],
                password=creds["password"],
                timeout=scaled(5),
            )

        async with client(a) as board_a, client(b) as board_b:
            await board_a.subscribe("#")  # refused by the broker's ACL (SUBACK 0x80)
            await board_a.publish(b["subscribe_topic"], b'{"type":"system","command":"reboot"}')
            await board_a.publish(b["publish_topic"], b'{"type":"hello","transport":"udp"}')
            await board_b.publish(b["publish_topic"], b'{"type":"hello","transport":"udp"}')
            hello = await asyncio.wait_for(anext(aiter(board_b.messages)), scaled(5))
            assert json.loads(hello.payload)["type"] == "hello"  # b's own hello, nothing else first
            await wait_until(lambda: server.sessions == 1, 5, "b's session")
            gateway = server.mqtt
            assert gateway is not None
            await wait_until(
                lambda: gateway.counts.get("mqtt-wrong-topic", 0) == 2, 5, "both refused"
            )
        assert gateway.counts.get("mqtt-subscribe", 0) == 0


async def test_a_connection_without_connect_is_closed(providers: Providers, tmp_path: Path) -> None:
    from server.transport.mqtt_broker import EmbeddedBroker

    async with running_server(providers, tmp_path, mqtt=mqtt_settings(tmp_path)) as server:
        assert server.mqtt is not None and isinstance(server.mqtt.broker, EmbeddedBroker)
        server.mqtt.broker.connect_timeout_s = 0.5  # 10 s in production
        reader, writer = await asyncio.open_connection("127.0.0.1", server.mqtt_port)
        assert await asyncio.wait_for(reader.read(), scaled(5)) == b""  # closed, nothing said
        writer.close()
