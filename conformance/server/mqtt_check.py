"""Item 18, the MQTT + UDP variant (protocol.md §4, §9 item 18), exercised like a board.

When the OTA answer has an ``mqtt`` section, :func:`run_mqtt_phase` (started by the runner next
to the WebSocket phases) connects with its credentials (TLS only on 8883) and **never
subscribes**; publishes the firmware's MQTT hello; expects the server hello within 10 s with
``transport`` ``udp`` and ``udp{server, port, key (32 hex), nonce (32 hex, byte 0 = 0x01)}``;
streams an encrypted spoken request over UDP (``listen start`` auto on MQTT) and records every
downlink datagram: where it came from, ``type``, ``payload_len``, sequence, and whether it
decrypts (AES-128-CTR, its own header as counter) into mono Opus of the hello's frame duration.
Then it says goodbye (the server must not answer it), opens a second session and stays silent
for ``idle_wait_s`` to see the server's own ``goodbye`` with that session's id.
:func:`check_18` judges the record; the OTA fields are checked first (``check_ota.check_18``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from conformance.report import ItemResult, Status
from conformance.server import check_ota
from conformance.server.items import result
from conformance.server.records import RunRecord
from protocol import udp

TLS_PORT = 8883
FRAME_S = 0.060
HELLO = json.dumps(
    {
        "type": "hello",
        "version": 3,
        "transport": "udp",
        "features": {"mcp": True},
        "audio_params": {
            "format": "opus",
            "sample_rate": 16000,
            "channels": 1,
            "frame_duration": 60,
        },
    },
    separators=(",", ":"),
)


@dataclass
class Downlink:
    datagrams: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    sequences: list[int] = field(default_factory=list)
    sources: set[tuple[str, int]] = field(default_factory=set)
    decoded: int = 0


@dataclass
class MqttRecord:
    endpoint: str = ""
    connect_error: str | None = None
    hello_ms: float | None = None
    hello_problems: list[str] = field(default_factory=list)
    session_id: str = ""
    udp_server: tuple[str, int] | None = None
    downlink: Downlink = field(default_factory=Downlink)
    tts: list[str] = field(default_factory=list)
    goodbye_echoed: bool = False
    idle_waited_s: float = 0.0
    server_goodbye: str | None = None
    """``session_id`` of the server's goodbye after the silent second session."""
    second_session_id: str = ""
    error: str | None = None


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait((data, (addr[0], addr[1])))


def _validate_hello(obj: dict[str, Any]) -> list[str]:
    problems = []
    if obj.get("transport") != "udp":
        problems.append(f"transport {obj.get('transport')!r} (must be 'udp')")
    params = obj.get("udp")
    if not isinstance(params, dict):
        return [*problems, "no udp object"]
    if not isinstance(params.get("server"), str) or not params["server"]:
        problems.append("udp.server not a string")
    port = params.get("port")
    if not isinstance(port, int) or not 1 <= port <= 65535:
        problems.append(f"udp.port {port!r}")
    try:
        keys = udp.UdpKeys.from_hex(params.get("key"), params.get("nonce"))
        if keys.nonce[0] != 0x01:
            problems.append("nonce byte 0 is not 0x01")
    except udp.InvalidKeyMaterial as exc:
        problems.append(str(exc))
    if not isinstance(obj.get("session_id"), str):
        problems.append("no string session_id")
    return problems


class _Board:
    """The MQTT side: every PUBLISH delivered to us (no subscription), in order."""

    def __init__(self, client: aiomqtt.Client, publish_topic: str) -> None:
        self.client, self.topic = client, publish_topic
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            async for message in self.client.messages:
                with contextlib.suppress(ValueError, TypeError):
                    obj = json.loads(message.payload)
                    if isinstance(obj, dict):
                        self.messages.put_nowait(obj)

    async def send(self, **fields: Any) -> None:
        await self.client.publish(self.topic, json.dumps(fields, separators=(",", ":")), qos=0)

    async def expect(self, kind: str, timeout_s: float, state: str | None = None) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            while True:
                obj = await self.messages.get()
                if obj.get("type") == kind and (state is None or obj.get("state") == state):
                    return obj


async def _hello(board: _Board, rec: MqttRecord, timeout_s: float) -> udp.UdpKeys | None:
    t0 = time.monotonic()
    await board.client.publish(board.topic, HELLO, qos=0)
    try:
        hello = await board.expect("hello", timeout_s)
    except TimeoutError:
        rec.hello_problems.append(f"no hello within {timeout_s:g} s")
        return None
    rec.hello_ms = (time.monotonic() - t0) * 1000
    rec.hello_problems += _validate_hello(hello)
    if rec.hello_problems:
        return None
    params = hello["udp"]
    host = socket.gethostbyname(params["server"])
    rec.udp_server, rec.session_id = (host, int(params["port"])), hello["session_id"]
    return udp.UdpKeys.from_hex(params["key"], params["nonce"])


def _observe(rec: MqttRecord, keys: udp.UdpKeys, data: bytes, addr: tuple[str, int]) -> None:
    down = rec.downlink
    down.datagrams += 1
    down.sources.add(addr)
    try:
        header = udp.parse(data)
    except udp.UdpPacketError as exc:
        down.problems[exc.code] += 1
        return
    if down.sequences and header.sequence <= down.sequences[-1]:
        down.problems["sequence not increasing"] += 1
    down.sequences.append(header.sequence)
    if udp.opus_duration_ms(udp.open_payload(keys, data)) == 60:
        down.decoded += 1
    else:
        down.problems["does not decrypt to 60 ms Opus"] += 1


async def _turn(
    board: _Board,
    rec: MqttRecord,
    keys: udp.UdpKeys,
    speech: list[bytes],
    silence: list[bytes],
    reply_timeout_s: float,
) -> None:
    loop = asyncio.get_running_loop()
    assert rec.udp_server is not None
    transport, proto = await loop.create_datagram_endpoint(_Udp, local_addr=("0.0.0.0", 0))
    try:
        await board.send(session_id=rec.session_id, type="listen", state="start", mode="auto")
        started = asyncio.create_task(board.expect("tts", reply_timeout_s, "start"))
        for seq, packet in enumerate(speech + silence, start=1):
            if started.done():
                break
            transport.sendto(udp.seal(keys, packet, sequence=seq), rec.udp_server)
            await asyncio.sleep(FRAME_S)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await started
            rec.tts.append("start")
            stopped = asyncio.create_task(board.expect("tts", reply_timeout_s, "stop"))
            while not stopped.done():
                getter = asyncio.create_task(proto.received.get())
                await asyncio.wait({getter, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    _observe(rec, keys, *getter.result())
                else:
                    getter.cancel()
            await stopped
            rec.tts.append("stop")
        while not proto.received.empty():
            _observe(rec, keys, *proto.received.get_nowait())
    finally:
        transport.close()


async def run_mqtt_phase(
    section: dict[str, Any],
    speech: list[bytes],
    silence: list[bytes],
    *,
    hello_timeout_s: float = 10.0,
    reply_timeout_s: float = 30.0,
    idle_wait_s: float = 0.0,
) -> MqttRecord:
    """Run the MQTT + UDP exchange; never raises for server misbehaviour."""
    rec = MqttRecord(endpoint=str(section.get("endpoint", "")))
    host, _, port_text = rec.endpoint.partition(":")
    port = int(port_text) if port_text.isdigit() else TLS_PORT
    try:
        client = aiomqtt.Client(
            host,
            port,
            identifier=str(section.get("client_id", "")),
            username=str(section.get("username", "")) or None,
            password=str(section.get("password", "")) or None,
            keepalive=int(section.get("keepalive", 240)),
            tls_context=ssl.create_default_context() if port == TLS_PORT else None,
            timeout=10,
        )
        async with client:
            board = _Board(client, str(section.get("publish_topic", "")))
            try:
                keys = await _hello(board, rec, hello_timeout_s)
                if keys is None:
                    return rec
                await _turn(board, rec, keys, speech, silence, reply_timeout_s)
                await board.send(session_id=rec.session_id, type="goodbye")
                with contextlib.suppress(TimeoutError):
                    await board.expect("goodbye", 1.0)
                    rec.goodbye_echoed = True
                if idle_wait_s > 0 and await _hello(board, rec, hello_timeout_s) is not None:
                    rec.second_session_id, rec.idle_waited_s = rec.session_id, idle_wait_s
                    with contextlib.suppress(TimeoutError):
                        bye = await board.expect("goodbye", idle_wait_s)
                        rec.server_goodbye = str(bye.get("session_id"))
            finally:
                board.task.cancel()
    except aiomqtt.MqttError as exc:
        rec.connect_error = f"MQTT CONNECT to {rec.endpoint} failed: {exc}"
    except (OSError, ValueError) as exc:
        rec.error = str(exc)
    return rec


def check_18(run: RunRecord) -> ItemResult:
    """The OTA fields, then (when the phase ran) the MQTT + UDP exchange itself."""
    ota = check_ota.check_18(run)
    rec = getattr(run, "mqtt", None)
    if ota.status is not Status.PASS or not isinstance(rec, MqttRecord):
        return ota
    if rec.connect_error or rec.error:
        return result(18, False, rec.connect_error or f"MQTT phase failed: {rec.error}")
    if rec.hello_problems:
        return result(18, False, "server hello over MQTT: " + "; ".join(rec.hello_problems))
    down, problems = rec.downlink, []
    if not down.datagrams:
        problems.append(f"no downlink audio over UDP (tts: {rec.tts or 'none'})")
    if down.sequences and down.sequences[0] != 1:
        problems.append(f"first downlink sequence {down.sequences[0]} (must be 1)")
    if down.problems:
        problems.append(f"downlink datagrams: {dict(down.problems)}")
    if rec.udp_server is not None and down.sources - {rec.udp_server}:
        problems.append(f"sent from {sorted(down.sources)} not the advertised {rec.udp_server}")
    if rec.tts != ["start", "stop"]:
        problems.append(f"tts over MQTT: {rec.tts}")
    if rec.goodbye_echoed:
        problems.append("answered the board's goodbye with a goodbye (ping-pong)")
    if rec.idle_waited_s and rec.server_goodbye != rec.second_session_id:
        got = rec.server_goodbye or "none"
        problems.append(f"idle session: goodbye {got!r} within {rec.idle_waited_s:g} s")
    if problems or rec.udp_server is None:
        return result(18, False, "; ".join(problems) or "no UDP server")
    goodbye = (
        "goodbye with the session id after idling"
        if rec.idle_waited_s
        else "idle goodbye not waited for"
    )
    return result(
        18,
        True,
        f"CONNECT without SUBSCRIBE; hello (udp) in {rec.hello_ms:.0f} ms; {down.datagrams} "
        f"datagrams seq 1..{down.sequences[-1]} from {rec.udp_server[0]}:{rec.udp_server[1]} "
        f"decrypted as 60 ms Opus; {goodbye}",
    )
