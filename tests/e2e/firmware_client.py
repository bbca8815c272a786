"""A firmware-like WebSocket client for end-to-end tests (real TCP, real Opus, real speech).

It behaves as xiaozhi-esp32 does on the wire (protocol.md §3): a hand-written handshake with the
firmware's exact header order (``Host`` without port, then alphabetical), masked frames, the
exact hello string, listen/abort strings as :mod:`protocol.messages` produces them, Opus
16 kHz/60 ms uplink frames paced in real time, and a hang-up that is a plain TCP close (no Close
frame). Every server message is recorded with its monotonic arrival time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from device.audio.sources import say
from iot.mcp_server import McpServer
from iot.things import demo_board
from protocol.audio import Pcm, split_frames
from protocol.binary import encode_frame
from protocol.enums import ListenMode
from protocol.messages import (
    Abort,
    DeviceMcp,
    ListenDetect,
    ListenStart,
    ListenStop,
    encode_message,
)
from protocol.opus import OpusEncoder

FRAME_S = 0.06
FRAME_SAMPLES = 960
HELLO = (
    '{"type":"hello","version":%d,"features":{"mcp":true},"transport":"websocket",'
    '"audio_params":{"format":"opus","sample_rate":16000,"channels":1,"frame_duration":60}}'
)


class HandshakeRejected(Exception):
    def __init__(self, status: int, head: str) -> None:
        super().__init__(f"handshake rejected with HTTP {status}")
        self.status = status
        self.head = head


@dataclass
class Received:
    kind: str
    """``text``, ``binary`` or ``close``."""
    data: Any
    """Parsed JSON dict, bytes, or ``(code, reason)``."""
    t: float


# ----------------------------------------------------------------------------- speech


def synthesize(text: str, engine: str = "flite") -> Pcm:
    """Speech for ``text`` as 16 kHz int16 PCM (flite's 16 kHz voice, or espeak-ng)."""
    return say(text, engine)


def last_voiced_sample(pcm: Pcm, threshold: int = 500) -> int:
    """Index of the last sample whose magnitude exceeds ``threshold`` (true end of speech)."""
    loud = np.nonzero(np.abs(pcm.astype(np.int32)) > threshold)[0]
    return int(loud[-1]) if loud.size else 0


# ----------------------------------------------------------------------------- client


@dataclass
class Utterance:
    """What :meth:`FirmwareClient.speak` sent."""

    frames: int
    speech_end_t: float
    """Monotonic time the frame holding the last voiced sample was sent."""
    started_t: float


@dataclass
class FirmwareClient:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    version: int = 1
    events: list[Received] = field(default_factory=list)
    session_id: str = ""
    mcp: McpServer | None = field(default_factory=lambda: McpServer(demo_board()))
    """The board's MCP server (None: MCP requests go unanswered)."""
    tools_listed: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _reader_task: asyncio.Task[None] | None = None
    _encoder: OpusEncoder = field(
        default_factory=lambda: OpusEncoder(16000, 60, complexity=0, dtx=True)
    )
    """As the firmware: application audio, complexity 0, VBR, DTX."""

    # ---------------------------------------------------------------- connect

    @classmethod
    async def connect(
        cls,
        port: int,
        *,
        host: str = "127.0.0.1",
        path: str = "/xiaozhi/v1/",
        token: str | None = None,
        device_id: str = "a0:b7:65:12:34:56",
        client_id: str = "3b1f0c52-8a8e-4c55-9a52-1d4a1c6a9e01",
        version: int = 1,
        extra_headers: dict[str, str] | None = None,
    ) -> FirmwareClient:
        reader, writer = await asyncio.open_connection(host, port)
        headers: dict[str, str] = {
            "Client-Id": client_id,
            "Connection": "Upgrade",
            "Device-Id": device_id,
            "Protocol-Version": str(version),
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
            "Sec-WebSocket-Version": "13",
            "Upgrade": "websocket",
        }
        if token:
            headers["Authorization"] = token if " " in token else f"Bearer {token}"
        headers.update(extra_headers or {})
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{k}: {v}" for k, v in sorted(headers.items(), key=lambda kv: kv[0].lower())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode("latin-1")
        if "HTTP/1.1 101" not in head:
            writer.close()
            status = int(head.split(" ", 2)[1]) if head.startswith("HTTP/") else 0
            raise HandshakeRejected(status, head)
        client = cls(reader, writer, version=version)
        client._reader_task = asyncio.create_task(client._read_loop())
        return client

    async def hello(self, timeout_s: float = 10.0) -> dict[str, Any]:
        await self.send_text(HELLO % self.version)
        msg = await self.wait_for(
            lambda r: r.kind == "text" and r.data.get("type") == "hello", timeout_s
        )
        self.session_id = msg.data.get("session_id", "")
        return dict(msg.data)

    # ---------------------------------------------------------------- frames out

    async def _send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = np.frombuffer(payload, np.uint8) ^ np.resize(np.frombuffer(mask, np.uint8), n)
        self.writer.write(header + mask + masked.tobytes())
        await self.writer.drain()

    async def send_text(self, text: str) -> None:
        await self._send_frame(0x1, text.encode())

    async def send_binary(self, data: bytes) -> None:
        await self._send_frame(0x2, data)

    async def send_audio(self, packet: bytes) -> None:
        await self.send_binary(encode_frame(packet, self.version))

    async def listen_start(self, mode: ListenMode = ListenMode.AUTO) -> None:
        await self.send_text(encode_message(ListenStart(session_id=self.session_id, mode=mode)))

    async def listen_stop(self) -> None:
        await self.send_text(encode_message(ListenStop(session_id=self.session_id)))

    async def listen_detect(self, text: str = "你好小智") -> None:
        await self.send_text(encode_message(ListenDetect(session_id=self.session_id, text=text)))

    async def abort(self, reason: str | None = None) -> None:
        await self.send_text(encode_message(Abort(session_id=self.session_id, reason=reason)))

    def encode(self, pcm: Pcm) -> list[bytes]:
        return [self._encoder.encode(f) for f in split_frames(pcm, FRAME_SAMPLES)]

    async def speak(
        self, pcm: Pcm, *, lead_s: float = 0.3, tail_s: float = 0.8, paced: bool = True
    ) -> Utterance:
        """Stream silence, the speech, then silence as 60 ms Opus frames in real time."""
        lead = np.zeros(int(lead_s * 16000), np.int16)
        tail = np.zeros(int(tail_s * 16000), np.int16)
        audio = np.concatenate((lead, pcm, tail))
        end_frame = (len(lead) + last_voiced_sample(pcm)) // FRAME_SAMPLES
        packets = self.encode(audio)
        t0 = time.monotonic()
        speech_end_t = t0
        for k, packet in enumerate(packets):
            if paced:
                delay = t0 + k * FRAME_S - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self.send_audio(packet)
            if k == end_frame:
                speech_end_t = time.monotonic()
        return Utterance(len(packets), speech_end_t, t0)

    async def stream_silence(self, stop: Callable[[], bool], max_s: float = 10.0) -> None:
        """Keep the mic streaming silence (as a board in auto mode) until ``stop()``."""
        packet = self._encoder.encode(np.zeros(FRAME_SAMPLES, np.int16))
        t0 = time.monotonic()
        k = 0
        while not stop() and time.monotonic() - t0 < max_s:
            await self.send_audio(packet)
            k += 1
            await asyncio.sleep(max(0.0, t0 + k * FRAME_S - time.monotonic()))

    async def drop(self) -> None:
        """Hang up as a board does: TCP close without a WebSocket Close frame."""
        if self._reader_task:
            self._reader_task.cancel()
        self.writer.close()

    # ---------------------------------------------------------------- frames in

    async def _read_loop(self) -> None:
        buffer = bytearray()
        opcode0 = 0
        try:
            while True:
                b1, b2 = await self.reader.readexactly(2)
                opcode, n = b1 & 0x0F, b2 & 0x7F
                if n == 126:
                    (n,) = struct.unpack("!H", await self.reader.readexactly(2))
                elif n == 127:
                    (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
                mask = await self.reader.readexactly(4) if b2 & 0x80 else b""
                payload = await self.reader.readexactly(n)
                if mask:
                    payload = bytes(
                        np.frombuffer(payload, np.uint8)
                        ^ np.resize(np.frombuffer(mask, np.uint8), n)
                    )
                now = time.monotonic()
                if opcode == 0x9:
                    await self._send_frame(0xA, payload)
                    continue
                if opcode == 0x8:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    self._record(Received("close", (code, payload[2:].decode()), now))
                    return
                if opcode in (0x1, 0x2):
                    opcode0, buffer = opcode, bytearray()
                buffer += payload
                if not b1 & 0x80:
                    continue
                if opcode0 == 0x1:
                    data = json.loads(buffer.decode())
                    self._record(Received("text", data, now))
                    if data.get("type") == "mcp":
                        await self._answer_mcp(data.get("payload") or {})
                else:
                    self._record(Received("binary", bytes(buffer), now))
        except (asyncio.IncompleteReadError, ConnectionError):
            self._record(Received("eof", None, time.monotonic()))

    def _record(self, item: Received) -> None:
        self.events.append(item)
        self._changed.set()

    async def _answer_mcp(self, payload: dict[str, Any]) -> None:
        """Answer as the board's MCP server (the simulated demo board's things and tools)."""
        if self.mcp is None:
            return
        reply = await self.mcp.handle(payload)
        if payload.get("method") == "tools/list":
            self.tools_listed.set()
        if reply is not None:
            message = DeviceMcp(session_id=self.session_id, payload=reply)
            await self.send_text(encode_message(message))

    async def wait_for(
        self, predicate: Callable[[Received], bool], timeout_s: float = 10.0, *, start: int = 0
    ) -> Received:
        """The first recorded message (from index ``start``) matching ``predicate``."""
        deadline = time.monotonic() + timeout_s
        while True:
            for item in self.events[start:]:
                if predicate(item):
                    return item
            left = deadline - time.monotonic()
            if left <= 0:
                kinds = [
                    (e.kind, e.data if e.kind != "binary" else len(e.data))
                    for e in self.events[start:]
                ][-20:]
                raise TimeoutError(f"no matching message within {timeout_s} s; last: {kinds}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    def texts(self, start: int = 0) -> list[dict[str, Any]]:
        return [e.data for e in self.events[start:] if e.kind == "text"]

    async def close(self) -> None:
        await self.drop()
