"""One socket of the deviant test server (:class:`DeviantSession`): hello, MCP discovery (ids
reused on request), a greeting on ``listen detect``, voice turns when working, the idle close."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from protocol.audio import AudioParams, rms_dbfs
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
from protocol.opus import OpusDecoder
from tests.peers.deviant_config import DeviantConfig, SessionLog

FRAME_MS = 60
FRAME_S = FRAME_MS / 1000
LEAD_FRAMES = 3
"""Frames sent at once when speech starts (then paced in real time)."""


class DeviantSession:
    """One socket: receive loop with the idle rule, MCP client, greeting and turns.

    ``greeting``/``reply`` are the Opus packets (60 ms) of the greeting and of the answer.
    """

    def __init__(
        self,
        config: DeviantConfig,
        ws: ServerConnection,
        log: SessionLog,
        *,
        greeting: Sequence[bytes],
        reply: Sequence[bytes],
    ) -> None:
        self.ws, self.log, self.cfg = ws, log, config
        self.greeting, self.reply = greeting, reply
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
                self._speak(self.greeting, self.cfg.greeting_text, greeting=True)
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
            self._speak(self.reply, self.cfg.reply_text, stt=self.cfg.stt_text)

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
