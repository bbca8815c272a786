"""A deliberately *different* xiaozhi server for tests: ``websockets`` + ``protocol/`` + real Opus.

It behaves like other servers in the wild do (modelled on xinnan-tech/xiaozhi-esp32-server 0.9.6,
see issue 22), not like ours, so the simulator and the conformance suite are tested against
behaviour our server never shows. Each deviation is a field of :class:`DeviantConfig`:

``greet_on_detect`` (True)
    ``listen detect`` → ``stt`` (the wake word), ``llm``, ``tts start``, ``sentence_start``,
    ~1.7 s of real Opus speech (flite, or a voiced signal when flite is missing), ``tts stop``.
``ping_interval_s`` (20.0)
    WebSocket pings every N s (the ``websockets`` default); None = never.
``raw_opus_on_v2`` (True)
    On a protocol-v2 socket, downlink audio is raw Opus without the 16-byte header.
``reuse_mcp_ids`` (True)
    ``initialize`` is id 1, the first ``tools/list`` id 2, and every ``tools/list`` that follows
    a ``nextCursor`` reuses id 2 (False: 3, 4, …).
``idle_close_s`` (180.0)
    The socket is closed (code 1000) after N s without any message in either direction;
    None = never. A conformant server closes within 120 s.
``late_abort_in_greeting`` (True)
    An ``abort`` during the greeting is honoured only when the greeting has finished
    (``tts stop`` after the last frame); an ``abort`` during a reply is honoured at once.

Besides the deviations, ``working`` (False) decides whether voice turns are answered. Off, the
server acts like one whose ASR is down: it accepts audio and never answers. On, an utterance ends
at ``listen stop`` (manual mode), or in auto/realtime mode after ``min_speech_frames`` frames
louder than ``speech_dbfs`` followed by ``end_silence_frames`` quieter ones (or after
``max_turn_frames`` frames in all); then it sends ``stt`` (``stt_text``), ``llm``, and a spoken
``reply_text``. Uplink audio is ignored while the server is speaking.

OTA: ``POST <ota_url>`` answers ``websocket.url`` (version 1), ``server_time`` and ``firmware``
(the board's own version, so no upgrade); ``GET`` answers HTTP 200 with a plain text line.

Use::

    async with DeviantServer(DeviantConfig(working=True)) as server:
        ...  # server.ota_url, server.ws_url, server.sessions (one SessionLog per socket)

Run by hand: ``python -m tests.peers.deviant_server --working --port 8000 --ota-port 8003``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

import numpy as np
from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from protocol.audio import AudioParams, Pcm, resample, rms_dbfs, samples_per_frame, split_frames
from protocol.binary import decode_frame, encode_frame
from protocol.errors import ProtocolError
from protocol.mcp import McpRequest, initialize_request, tools_list_request
from protocol.messages import (
    Llm,
    ServerHello,
    ServerMcp,
    Stt,
    TtsSentenceStart,
    TtsStart,
    TtsStop,
    WireModel,
    encode_message,
)
from protocol.opus import OpusDecoder, OpusEncoder

logger = logging.getLogger(__name__)

FRAME_MS = 60
FRAME_S = FRAME_MS / 1000
LEAD_FRAMES = 3
"""Frames sent at once when speech starts (then paced in real time)."""


@dataclass(frozen=True)
class DeviantConfig:
    """What the deviant server does; durations in s, levels in dBFS. See the module docstring."""

    greet_on_detect: bool = True
    ping_interval_s: float | None = 20.0
    raw_opus_on_v2: bool = True
    reuse_mcp_ids: bool = True
    idle_close_s: float | None = 180.0
    late_abort_in_greeting: bool = True
    working: bool = False
    greeting_text: str = "Yes? I am listening."
    stt_text: str = "what time is it"
    reply_text: str = "It is twelve o'clock."
    sample_rate_hz: int = 24000
    """Downlink Opus rate announced in the server hello (16000 or 24000)."""
    speech_dbfs: float = -45.0
    min_speech_frames: int = 3
    end_silence_frames: int = 6
    max_turn_frames: int = 200

    @classmethod
    def conformant(cls, **changes: Any) -> DeviantConfig:
        """No deviation at all (greets, but frames, pings, ids, idle close and abort are right)."""
        base = cls(
            ping_interval_s=None,
            raw_opus_on_v2=False,
            reuse_mcp_ids=False,
            idle_close_s=110.0,
            late_abort_in_greeting=False,
        )
        return replace(base, **changes)


@dataclass
class SessionLog:
    """What happened on one socket (times: event-loop seconds)."""

    index: int
    version: int
    greetings: list[tuple[float, float | None]] = field(default_factory=list)
    """(tts start, tts stop) of every greeting."""
    replies: list[tuple[float, float | None]] = field(default_factory=list)
    aborts: list[float] = field(default_factory=list)
    loud_frames: list[float] = field(default_factory=list)
    """Arrival times of uplink frames louder than ``speech_dbfs``."""
    mcp_ids_sent: list[int] = field(default_factory=list)
    closed_idle: bool = False


class DeviantServer:
    """OTA (aiohttp) + WebSocket (websockets) on ``host``; ports 0 pick free ones."""

    def __init__(
        self,
        config: DeviantConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ota_port: int = 0,
    ) -> None:
        self.config = config or DeviantConfig()
        self.host, self.port, self.ota_port = host, port, ota_port
        self.sessions: list[SessionLog] = []
        self.ws_url = ""
        self.ota_url = ""
        self.greeting: list[bytes] = []
        self.reply: list[bytes] = []
        self._ws: Server | None = None
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> DeviantServer:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        cfg = self.config
        self.greeting = await asyncio.to_thread(
            speech_packets, cfg.greeting_text, cfg.sample_rate_hz
        )
        self.reply = await asyncio.to_thread(speech_packets, cfg.reply_text, cfg.sample_rate_hz)
        self._ws = await serve(
            self._handle,
            self.host,
            self.port,
            ping_interval=cfg.ping_interval_s,
            ping_timeout=None,
            compression=None,
            max_size=1 << 20,
        )
        port = self._ws.sockets[0].getsockname()[1]
        self.ws_url = f"ws://{self.host}:{port}/xiaozhi/v1/"
        app = web.Application()
        app.router.add_route("*", "/xiaozhi/ota/", self._ota)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.ota_port).start()
        self.ota_url = f"http://{self.host}:{self._runner.addresses[0][1]}/xiaozhi/ota/"

    async def stop(self) -> None:
        if self._ws is not None:
            self._ws.close()
            await self._ws.wait_closed()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _ota(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return web.Response(text=f"OTA interface is running, websocket address: {self.ws_url}")
        try:
            body = json.loads(await request.read())
            version = str(body["application"]["version"])
        except (ValueError, KeyError, TypeError):
            version = "1.0.0"
        return web.json_response(
            {
                "server_time": {"timestamp": int(_wall_ms()), "timezone_offset": 480},
                "firmware": {"version": version, "url": ""},
                "websocket": {"url": self.ws_url, "version": 1},
            }
        )

    async def _handle(self, ws: ServerConnection) -> None:
        header = ws.request.headers.get("Protocol-Version", "1") if ws.request else "1"
        version = int(header) if header in ("1", "2", "3") else 1
        log = SessionLog(index=len(self.sessions), version=version)
        self.sessions.append(log)
        await _Session(self, ws, log).run()


def _wall_ms() -> float:
    import time

    return time.time() * 1000.0


def speech_packets(text: str, rate_hz: int) -> list[bytes]:
    """``text`` spoken (flite; a voiced signal when flite is missing) as 60 ms Opus packets."""
    from device.audio.sources import AudioSourceError, say

    try:
        pcm: Pcm = resample(say(text), 16000, rate_hz)
    except AudioSourceError:
        pcm = voiced_signal(1.5, rate_hz)
    encoder = OpusEncoder(rate_hz, FRAME_MS)
    return [encoder.encode(f) for f in split_frames(pcm, samples_per_frame(rate_hz, FRAME_MS))]


def voiced_signal(seconds: float, rate_hz: int) -> Pcm:
    """A speech-like signal: 140 Hz harmonics under a 4 Hz syllable envelope."""
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    wave = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    return (wave * envelope * 4000).astype(np.int16)


class _Session:
    """One socket: receive loop with the idle rule, MCP client, greeting and turns."""

    def __init__(self, server: DeviantServer, ws: ServerConnection, log: SessionLog) -> None:
        self.server, self.ws, self.log, self.cfg = server, ws, log, server.config
        self.loop = asyncio.get_running_loop()
        self.last_activity = self.loop.time()
        self.session_id = f"deviant-{log.index}"
        self.mode: str | None = None
        self.loud = self.quiet = self.frames = 0
        self.speaking: asyncio.Task[None] | None = None
        self.greeting_now = False
        self.abort_pending = False
        self.next_id = 1
        self.pages = 0
        self.decoder = OpusDecoder(16000, FRAME_MS)

    async def run(self) -> None:
        try:
            while True:
                limit = self.cfg.idle_close_s
                timeout = None if limit is None else limit - (self.loop.time() - self.last_activity)
                if timeout is not None and timeout <= 0:
                    self.log.closed_idle = True
                    await self.ws.close(1000, "idle")
                    return
                try:
                    message = await asyncio.wait_for(self.ws.recv(), timeout)
                except TimeoutError:
                    continue
                self.last_activity = self.loop.time()
                if isinstance(message, bytes):
                    self._audio(message)
                else:
                    await self._text(message)
        except ConnectionClosed:
            pass
        finally:
            if self.speaking is not None:
                self.speaking.cancel()

    async def send(self, data: WireModel | bytes) -> None:
        self.last_activity = self.loop.time()
        await self.ws.send(data if isinstance(data, bytes) else encode_message(data))

    async def _mcp(self, request_id: int, request: McpRequest) -> None:
        self.log.mcp_ids_sent.append(request_id)
        await self.send(ServerMcp(payload=request.to_payload()))

    async def _text(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        kind, state = msg.get("type"), msg.get("state")
        if kind == "hello":
            await self._hello(msg)
        elif kind == "mcp":
            await self._mcp_answer(msg.get("payload"))
        elif kind == "listen" and state == "detect" and self.cfg.greet_on_detect:
            if self.speaking is None or self.speaking.done():
                await self.send(Stt(text=str(msg.get("text") or ""), session_id=self.session_id))
                self._speak(self.server.greeting, self.cfg.greeting_text, greeting=True)
        elif kind == "listen" and state == "start":
            self.mode, self.loud, self.quiet, self.frames = str(msg.get("mode")), 0, 0, 0
        elif kind == "listen" and state == "stop" and self.mode == "manual":
            self.mode = None
            self._answer()
        elif kind == "abort":
            await self._abort()

    async def _hello(self, msg: dict[str, Any]) -> None:
        await self.send(
            ServerHello(
                transport="websocket",
                session_id=self.session_id,
                audio_params=AudioParams(
                    sample_rate=self.cfg.sample_rate_hz, frame_duration=FRAME_MS
                ),
            )
        )
        features = msg.get("features")
        if isinstance(features, dict) and features.get("mcp") is True:
            await self._mcp(1, initialize_request(1))
            self.next_id = 2

    async def _mcp_answer(self, payload: Any) -> None:
        if not isinstance(payload, dict) or "result" not in payload:
            return
        result = payload.get("result")
        cursor = result.get("nextCursor") if isinstance(result, dict) else None
        if payload.get("id") == 1:
            self.pages = 1
            await self._mcp(2, tools_list_request(2))
            self.next_id = 3
        elif isinstance(cursor, str) and cursor and self.pages < 20:
            self.pages += 1
            ident = 2 if self.cfg.reuse_mcp_ids else self.next_id
            self.next_id += 0 if self.cfg.reuse_mcp_ids else 1
            await self._mcp(ident, tools_list_request(ident, cursor))

    async def _abort(self) -> None:
        self.log.aborts.append(self.loop.time())
        task = self.speaking
        if task is None or task.done():
            return
        if self.greeting_now and self.cfg.late_abort_in_greeting:
            self.abort_pending = True  # the greeting plays to its end, then tts stop
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._stop_speech()

    def _audio(self, data: bytes) -> None:
        if self.mode not in ("auto", "realtime") or (self.speaking and not self.speaking.done()):
            return
        try:
            level = rms_dbfs(self.decoder.decode(decode_frame(data, self.log.version).payload))
        except ProtocolError:
            return
        self.frames += 1
        if level > self.cfg.speech_dbfs:
            self.log.loud_frames.append(self.loop.time())
            self.loud, self.quiet = self.loud + 1, 0
        elif self.loud >= self.cfg.min_speech_frames:
            self.quiet += 1
        ended = self.quiet >= self.cfg.end_silence_frames
        if ended or self.frames >= self.cfg.max_turn_frames:
            self.mode = None
            self._answer()

    def _answer(self) -> None:
        if self.cfg.working:
            self._speak(self.server.reply, self.cfg.reply_text, stt=self.cfg.stt_text)

    def _speak(
        self, packets: Sequence[bytes], sentence: str, *, greeting: bool = False, stt: str = ""
    ) -> None:
        self.speaking = asyncio.create_task(self._speech(packets, sentence, greeting, stt))

    async def _speech(
        self, packets: Sequence[bytes], sentence: str, greeting: bool, stt: str
    ) -> None:
        spans = self.log.greetings if greeting else self.log.replies
        self.greeting_now = greeting
        try:
            if stt:
                await self.send(Stt(text=stt, session_id=self.session_id))
            await self.send(Llm(emotion="happy", text="🙂", session_id=self.session_id))
            await self.send(TtsStart(session_id=self.session_id))
            spans.append((self.loop.time(), None))
            await self.send(TtsSentenceStart(text=sentence, session_id=self.session_id))
            t0 = self.loop.time()
            for i, packet in enumerate(packets):
                due = t0 + max(0, i - LEAD_FRAMES) * FRAME_S
                await asyncio.sleep(max(0.0, due - self.loop.time()))
                await self.send(self._frame(packet))
            await asyncio.sleep(max(0.0, t0 + len(packets) * FRAME_S - self.loop.time()))
            await self._stop_speech()
        except ConnectionClosed:
            pass

    async def _stop_speech(self) -> None:
        spans = self.log.greetings if self.greeting_now else self.log.replies
        if spans and spans[-1][1] is None:
            spans[-1] = (spans[-1][0], self.loop.time())
        self.greeting_now = self.abort_pending = False
        await self.send(TtsStop(session_id=self.session_id))

    def _frame(self, packet: bytes) -> bytes:
        if self.log.version == 2 and self.cfg.raw_opus_on_v2:
            return packet
        return encode_frame(packet, self.log.version)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted, printing the OTA and WebSocket URLs."""
    parser = argparse.ArgumentParser(description="Run the deviant test server.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="WebSocket port (default: any free)")
    parser.add_argument("--ota-port", type=int, default=0, help="OTA port (default: any free)")
    parser.add_argument("--working", action="store_true", help="answer voice turns")
    parser.add_argument("--idle-close", type=float, default=180.0, help="idle close s (180)")
    args = parser.parse_args(argv)
    cfg = DeviantConfig(working=args.working, idle_close_s=args.idle_close)

    async def serve_forever() -> None:
        async with DeviantServer(cfg, host=args.host, port=args.port, ota_port=args.ota_port) as s:
            print(f"OTA {s.ota_url}\nWebSocket {s.ws_url}", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
