"""A small, configurable xiaozhi server for testing the server checker: real WebSocket, real Opus,
canned flite speech, and deliberate faults (:class:`Faults`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from conformance.audio import encode_pcm, synthesize
from conformance.server.runner import RunConfig
from protocol.audio import rms_dbfs
from protocol.binary import decode_frame, encode_frame
from protocol.errors import ProtocolError
from protocol.opus import OpusDecoder

REPLY_RATE_HZ = 24000


@dataclass
class Faults:
    hello_without_transport: bool = False
    audio_before_tts_start: bool = False
    audio_after_tts_stop: bool = False
    unpaced_burst: bool = False
    ota_mqtt: bool = False
    firmware_version: str = "2.4.2"
    ignore_abort: bool = False
    ping_interval_s: float | None = None
    reply_repeat: int = 1
    idle_close_s: float | None = None


@pytest.fixture(scope="session")
def reply_packets() -> list[bytes]:
    """Canned answer: flite speech at 24 kHz, 60 ms Opus packets (about 1.2 s)."""
    return encode_pcm(synthesize("It is twelve o'clock.", REPLY_RATE_HZ), REPLY_RATE_HZ, 60)


class StubServer:
    """OTA (aiohttp) + WebSocket (websockets) on 127.0.0.1, behaving per :class:`Faults`."""

    def __init__(self, faults: Faults, reply: list[bytes]) -> None:
        self.faults = faults
        self.reply = reply * faults.reply_repeat
        self.sessions = 0
        self._ws: Server | None = None
        self._runner: web.AppRunner | None = None
        self.ws_url = ""
        self.ota_url = ""

    async def start(self) -> None:
        self._ws = await serve(
            self._handle,
            "127.0.0.1",
            0,
            ping_interval=self.faults.ping_interval_s,
            compression=None,
        )
        port = self._ws.sockets[0].getsockname()[1]
        self.ws_url = f"ws://127.0.0.1:{port}/xiaozhi/v1/"
        app = web.Application()
        app.router.add_route("*", "/xiaozhi/ota/", self._ota)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        http_port = self._runner.addresses[0][1]
        self.ota_url = f"http://127.0.0.1:{http_port}/xiaozhi/ota/"

    async def stop(self) -> None:
        if self._ws is not None:
            self._ws.close()
            await self._ws.wait_closed()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _ota(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = {
            "server_time": {"timestamp": int(time.time() * 1000), "timezone_offset": 0},
            "firmware": {"version": self.faults.firmware_version, "url": ""},
            "websocket": {"url": self.ws_url, "token": "stub-token", "version": 1},
        }
        if self.faults.ota_mqtt:
            body["mqtt"] = {
                "endpoint": "127.0.0.1:1883",
                "client_id": "c",
                "username": "u",
                "password": "p",
                "publish_topic": "device-server",
                "keepalive": 240,
            }
        return web.json_response(body)

    # ------------------------------------------------------------------ WebSocket session

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        version = int(ws.request.headers.get("Protocol-Version", "1"))
        self.sessions += 1
        state: dict[str, Any] = {"mode": None, "loud": 0, "quiet": 0, "task": None, "mcp": 0}
        decoder = OpusDecoder(16000, 60)
        try:
            while True:
                timeout = self.faults.idle_close_s
                try:
                    message = await asyncio.wait_for(ws.recv(), timeout)
                except TimeoutError:
                    await ws.close()
                    return
                if isinstance(message, bytes):
                    await self._audio(ws, version, state, decoder, message)
                    continue
                obj = json.loads(message)
                kind = obj.get("type")
                if kind == "hello":
                    hello: dict[str, Any] = {
                        "type": "hello",
                        "transport": "websocket",
                        "session_id": f"stub-{self.sessions}",
                        "audio_params": {
                            "format": "opus",
                            "sample_rate": REPLY_RATE_HZ,
                            "channels": 1,
                            "frame_duration": 60,
                        },
                    }
                    if self.faults.hello_without_transport:
                        del hello["transport"]
                    await ws.send(json.dumps(hello))
                    await self._mcp(
                        ws,
                        {
                            "jsonrpc": "2.0",
                            "id": 1,
                            "method": "initialize",
                            "params": {"capabilities": {}},
                        },
                    )
                elif kind == "mcp":
                    await self._mcp_reply(ws, obj.get("payload") or {})
                elif kind == "listen" and obj.get("state") == "start":
                    state.update(mode=obj.get("mode"), loud=0, quiet=0)
                elif kind == "listen" and obj.get("state") == "stop" and state["mode"] == "manual":
                    state["mode"] = None
                    self._answer(ws, version, state)
                elif kind == "abort":
                    task = state["task"]
                    if task is not None and not task.done() and not self.faults.ignore_abort:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                        await ws.send(json.dumps({"type": "tts", "state": "stop"}))
        except ConnectionClosed:
            pass
        finally:
            if state["task"] is not None:
                state["task"].cancel()

    async def _mcp(self, ws: ServerConnection, payload: dict[str, Any]) -> None:
        await ws.send(json.dumps({"type": "mcp", "payload": payload}))

    async def _mcp_reply(self, ws: ServerConnection, payload: dict[str, Any]) -> None:
        result = payload.get("result") or {}
        if payload.get("id") == 1:
            await self._mcp(
                ws, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"cursor": ""}}
            )
        elif payload.get("id") in (2, 3) and result.get("nextCursor"):
            await self._mcp(
                ws,
                {
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "tools/list",
                    "params": {"cursor": result["nextCursor"]},
                },
            )
        elif payload.get("id") in (2, 3):
            await self._mcp(
                ws,
                {
                    "jsonrpc": "2.0",
                    "id": 4,
                    "method": "tools/call",
                    "params": {"name": "self.get_device_status", "arguments": {}},
                },
            )

    async def _audio(
        self,
        ws: ServerConnection,
        version: int,
        state: dict[str, Any],
        decoder: OpusDecoder,
        data: bytes,
    ) -> None:
        if state["mode"] != "auto" or (state["task"] is not None and not state["task"].done()):
            return
        try:
            level = rms_dbfs(decoder.decode(decode_frame(data, version).payload))
        except ProtocolError:
            return
        if level > -45:
            state["loud"] += 1
            state["quiet"] = 0
        elif state["loud"] >= 3:
            state["quiet"] += 1
            if state["quiet"] >= 6:
                state["mode"] = None
                self._answer(ws, version, state)

    def _answer(self, ws: ServerConnection, version: int, state: dict[str, Any]) -> None:
        state["task"] = asyncio.create_task(self._speak(ws, version))

    async def _speak(self, ws: ServerConnection, version: int) -> None:
        f = self.faults
        try:
            await ws.send(json.dumps({"type": "stt", "text": "what time is it"}))
            await ws.send(json.dumps({"type": "llm", "text": "🙂", "emotion": "happy"}))
            if f.audio_before_tts_start:
                for p in self.reply[:2]:
                    await ws.send(encode_frame(p, version))
            await ws.send(json.dumps({"type": "tts", "state": "start"}))
            await ws.send(
                json.dumps({"type": "tts", "state": "sentence_start", "text": "It is noon."})
            )
            if f.unpaced_burst:
                for i in range(100):
                    await ws.send(encode_frame(self.reply[i % len(self.reply)], version))
            else:
                t0 = asyncio.get_running_loop().time()
                for i, p in enumerate(self.reply):
                    await asyncio.sleep(max(0.0, t0 + i * 0.06 - asyncio.get_running_loop().time()))
                    await ws.send(encode_frame(p, version))
            await ws.send(json.dumps({"type": "tts", "state": "stop"}))
            if f.audio_after_tts_stop:
                for p in self.reply[:2]:
                    await ws.send(encode_frame(p, version))
        except ConnectionClosed:
            pass


@pytest.fixture
async def stub_factory(reply_packets: list[bytes]) -> AsyncIterator[Any]:
    servers: list[StubServer] = []

    async def make(**faults: Any) -> StubServer:
        server = StubServer(Faults(**faults), reply_packets)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.stop()


def fast_config(server: StubServer, items: tuple[int, ...], **kw: Any) -> RunConfig:
    """A run against a stub with short waits (the stub answers within ~0.5 s)."""
    base: dict[str, Any] = dict(
        ws_url=server.ws_url,
        ota_url=server.ota_url,
        items=items,
        answer_timeout_s=6.0,
        reply_timeout_s=8.0,
        tail_silence_s=0.6,
        settle_s=0.15,
        burst_frames=10,
        hello_timeout_s=3.0,
        idle_wait_s=0.0,
        greeting_wait_s=1.0,
    )
    base.update(kw)
    return RunConfig(**base)
