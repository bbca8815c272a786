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

The options live in :mod:`tests.peers.deviant_config`, one socket's behaviour in
:mod:`tests.peers.deviant_session`; this module is the server (OTA + WebSocket) around them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from types import TracebackType

import numpy as np
from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve

from protocol.audio import Pcm, resample, samples_per_frame, split_frames
from protocol.opus import OpusEncoder
from tests.peers.deviant_config import DeviantConfig, SessionLog
from tests.peers.deviant_session import FRAME_MS, DeviantSession

logger = logging.getLogger(__name__)
__all__ = ["DeviantConfig", "DeviantServer", "SessionLog", "speech_packets", "voiced_signal"]


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
        port = next(iter(self._ws.sockets)).getsockname()[1]
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
        session = DeviantSession(self.config, ws, log, greeting=self.greeting, reply=self.reply)
        await session.run()


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
