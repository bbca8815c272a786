"""A scripted xiaozhi server that records everything a device sends (OTA, /activate, WebSocket).

Behaviour per WebSocket connection: reply to the hello, probe MCP (first connection), ping once,
and answer every utterance with a fixed reply shape (5 pre-``tts start`` frames that must be
dropped, stt/llm, ``tts start``, a burst of 50 Opus frames, paced frames, ``tts stop``). An
``abort`` cuts the reply short. After a wake-word barge-in's ``listen start`` the server ends the
chat with a Close frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import numpy as np
from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from conformance.device.harness_config import OTA_PATH, WILDCARD_HOSTS, WS_PATH, HarnessConfig
from conformance.device.harness_mcp import McpProber
from conformance.device.harness_ota import OtaEndpoint
from conformance.device.records import ConnRecord, HttpRecord, McpProbe, TurnRecord, WsEvent
from protocol.binary import decode_frame, encode_frame
from protocol.errors import ProtocolError
from protocol.opus import OpusDecoder, OpusEncoder

logger = logging.getLogger(__name__)


class DeviceCheckServer:
    """OTA (aiohttp) + WebSocket (websockets) endpoints on ``cfg.host``, recording everything.

    ``ota_url``/``ws_url`` use 127.0.0.1 when listening on every interface; the OTA answer hands
    out the WebSocket URL on the address the board used to reach the OTA endpoint.
    """

    def __init__(self, config: HarnessConfig | None = None) -> None:
        self.cfg = config or HarnessConfig()
        self.http: list[HttpRecord] = []
        self.conns: list[ConnRecord] = []
        self.mcp = McpProbe()
        self._runner: web.AppRunner | None = None
        self._ws_server: Server | None = None
        self.ota_url = ""
        self.ws_url = ""
        self.port = self.ws_port = 0
        self._ota_endpoint = OtaEndpoint(self.cfg, self.http)
        self._encoder = OpusEncoder(self.cfg.sample_rate_hz, 60)
        t = np.arange(self.cfg.sample_rate_hz * 60 // 1000)
        self._tone = (np.sin(2 * np.pi * 440 * t / self.cfg.sample_rate_hz) * 6000).astype(np.int16)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.errors: list[str] = []

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        app = web.Application()
        self._ota_endpoint.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        host = self.cfg.host or "0.0.0.0"
        site = web.TCPSite(self._runner, host, self.cfg.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        shown = "127.0.0.1" if host in WILDCARD_HOSTS else host
        self.ota_url = f"http://{shown}:{self.port}{OTA_PATH}"
        self._ws_server = await serve(
            self._ws, host, self.cfg.ws_port, ping_interval=None, compression=None, max_size=1 << 20
        )
        self.ws_port = next(iter(self._ws_server.sockets)).getsockname()[1]
        self._ota_endpoint.ws_port = self.ws_port
        self.ws_url = f"ws://{shown}:{self.ws_port}{WS_PATH}"

    def ota_urls(self, addresses: list[str]) -> list[str]:
        """The OTA URL to enter on a board, for each of ``addresses`` when listening on every
        interface (else the one bound address)."""
        if self.cfg.host not in WILDCARD_HOSTS:
            return [self.ota_url]
        return [f"http://{address}:{self.port}{OTA_PATH}" for address in addresses]

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ws_server is not None:
            self._ws_server.close()
            await self._ws_server.wait_closed()
        if self._runner is not None:
            await self._runner.cleanup()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ WebSocket
    async def _send(self, ws: ServerConnection, conn: ConnRecord, data: str | bytes) -> None:
        conn.events.append(
            WsEvent(time.monotonic(), "out", "text" if isinstance(data, str) else "binary", data)
        )
        await ws.send(data)

    async def _ws(self, ws: ServerConnection) -> None:
        req = ws.request
        assert req is not None
        index = len(self.conns)
        sid = None if index == self.cfg.omit_session_id_on else f"conf-{index}"
        conn = ConnRecord(index, time.monotonic(), req.path, list(req.headers.raw_items()), sid)
        self.conns.append(conn)
        version = int(dict(conn.headers).get("Protocol-Version", "1") or 1)
        state = _ConnState(ws, conn, version)
        try:
            await self._serve(state)
        except ConnectionClosed:
            pass
        finally:
            for task in state.tasks:
                task.cancel()
            conn.t_closed = time.monotonic()
            if not conn.server_closed:
                conn.device_close_frame = ws.protocol.close_rcvd is not None
            conn.events.append(WsEvent(conn.t_closed, "in", "close", str(ws.close_code)))

    async def _serve(self, st: _ConnState) -> None:
        ws, conn = st.ws, st.conn
        first = await asyncio.wait_for(ws.recv(), 10)
        conn.events.append(
            WsEvent(time.monotonic(), "in", "text" if isinstance(first, str) else "binary", first)
        )
        hello: dict[str, Any] = {"type": "hello", "transport": "websocket"}
        if conn.session_id is not None:
            hello["session_id"] = conn.session_id
        hello["audio_params"] = {
            "format": "opus",
            "sample_rate": self.cfg.sample_rate_hz,
            "channels": 1,
            "frame_duration": 60,
        }
        await self._send(ws, conn, json.dumps(hello, separators=(",", ":")))
        if conn.index == 0:
            prober = McpProber(lambda text: self._send(ws, conn, text), st.pending, self.mcp)
            st.spawn(prober.run())
        st.spawn(self._ping(st))
        async for data in ws:
            conn.events.append(
                WsEvent(time.monotonic(), "in", "text" if isinstance(data, str) else "binary", data)
            )
            if isinstance(data, bytes):
                self._uplink(st, data)
            else:
                await self._text(st, data)

    def _uplink(self, st: _ConnState, data: bytes) -> None:
        try:
            payload = decode_frame(data, st.version).payload
            st.conn.uplink_samples.add(len(st.decoder.decode(payload)))
        except ProtocolError:
            st.conn.decode_failures += 1
        st.frames += 1
        if st.mode in ("auto", "realtime") and st.frames == self.cfg.respond_after_frames:
            st.spawn(self._reply(st))

    async def _text(self, st: _ConnState, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            return
        kind, state = msg.get("type"), msg.get("state")
        if kind == "listen" and state == "start":
            if st.close_on_next_listen:
                st.conn.server_closed = True
                await st.ws.close(1000, "conversation over")
                return
            st.mode, st.frames = msg.get("mode", "auto"), 0
        elif kind == "listen" and state == "stop" and st.mode == "manual":
            st.mode = "stopped"
            st.spawn(self._reply(st))
        elif kind == "abort":
            if st.turn is not None:
                st.turn.abort_at, st.turn.abort_text = time.monotonic(), text
            st.aborted.set()
            if msg.get("reason") == "wake_word_detected":
                st.close_on_next_listen = True
        elif kind == "mcp":
            payload = msg.get("payload")
            rid = payload.get("id") if isinstance(payload, dict) else None
            fut = st.pending.pop(rid, None) if isinstance(rid, int) else None
            if fut is not None and not fut.done():
                fut.set_result(payload)
            else:
                self.mcp.unexpected.append(msg)

    async def _ping(self, st: _ConnState) -> None:
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        with contextlib.suppress(TimeoutError, ConnectionClosed):
            waiter = await st.ws.ping(b"conf")
            await asyncio.wait_for(waiter, 3)
            st.conn.pong_ms = (time.monotonic() - t0) * 1000

    async def _reply(self, st: _ConnState) -> None:
        """One spoken reply; stops streaming at once on abort."""
        ws, conn, cfg = st.ws, st.conn, self.cfg
        turn = TurnRecord(mode=st.mode)
        st.turn, conn.turns = turn, [*conn.turns, turn]
        st.aborted.clear()
        frame = encode_frame(self._encoder.encode(self._tone), st.version)
        for _ in range(cfg.pre_start_frames):
            await self._send(ws, conn, frame)
        await self._send(ws, conn, '{"type":"stt","text":"conformance check"}')
        await self._send(ws, conn, '{"type":"llm","text":"🙂","emotion":"happy"}')
        if len(conn.turns) == 1:  # messages a board must log and ignore
            for extra in (
                '{"type":"goodbye"}',
                '{"type":"custom","payload":{"x":1}}',
                '{"type":"future_thing","x":1}',
                '{"type":"alert","status":"x"}',
            ):
                await self._send(ws, conn, extra)
        await self._send(ws, conn, '{"type":"tts","state":"start"}')
        turn.tts_start = time.monotonic()
        await asyncio.sleep(0.05)
        await self._send(ws, conn, '{"type":"tts","state":"sentence_start","text":"Done."}')
        for _ in range(cfg.burst_frames):
            await self._send(ws, conn, frame)
            turn.frames_sent += 1
        deadline = time.monotonic() + cfg.paced_s
        while time.monotonic() < deadline and not st.aborted.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(st.aborted.wait(), 0.06)
            if not st.aborted.is_set():
                await self._send(ws, conn, frame)
                turn.frames_sent += 1
        await self._send(ws, conn, '{"type":"tts","state":"stop"}')
        turn.tts_stop = time.monotonic()


class _ConnState:
    """Per-connection scripting state."""

    def __init__(self, ws: ServerConnection, conn: ConnRecord, version: int) -> None:
        self.ws, self.conn, self.version = ws, conn, version
        self.mode = ""
        self.frames = 0
        self.turn: TurnRecord | None = None
        self.aborted = asyncio.Event()
        self.close_on_next_listen = False
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.decoder = OpusDecoder(16000, 60)
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
