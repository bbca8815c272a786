"""A session over an in-memory channel, with fake VAD/ASR and the fake dialogue/TTS."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from protocol.binary import encode_frame
from protocol.opus import OpusEncoder
from server.config import load_settings
from server.metrics import ServerMetrics
from server.providers.base import AsrCapabilities, Transcript
from server.session.connection import ChannelClosed, Connection, PeerInfo
from server.session.deps import SessionDeps
from tests.server.fakes import FakeDialogue, ToneTts


class MemoryChannel:
    def __init__(self) -> None:
        self.inbound: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.sent: list[str | bytes] = []
        self.closed: tuple[int, str] | None = None
        self.changed = asyncio.Event()

    async def recv(self) -> str | bytes:
        item = await self.inbound.get()
        if item is None:
            raise ChannelClosed("peer went away")
        return item

    async def send(self, data: str | bytes) -> None:
        self.sent.append(data)
        self.changed.set()

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def texts(self) -> list[dict]:
        return [json.loads(m) for m in self.sent if isinstance(m, str)]

    async def wait_tts_stop(self, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not any(m.get("state") == "stop" for m in self.texts()):
                self.changed.clear()
                await self.changed.wait()

    async def open(self, listen: str | None = None) -> None:
        """Send a v1 hello and wait for the server's; then ``listen start`` in mode ``listen``."""
        await self.inbound.put('{"type":"hello","version":1,"transport":"websocket"}')
        await self.wait_text("hello")
        if listen is not None:
            await self.inbound.put(
                f'{{"session_id":"","type":"listen","state":"start","mode":"{listen}"}}'
            )

    async def wait_text(self, kind: str, timeout_s: float = 5.0) -> dict:
        async with asyncio.timeout(timeout_s):
            while True:
                for message in self.texts():
                    if message.get("type") == kind:
                        return message
                self.changed.clear()
                await self.changed.wait()


class LoudVad:
    """Speech = a 32 ms window louder than -30 dBFS."""

    name = "loud"
    window_ms = 32.0

    def __init__(self) -> None:
        self.pending = np.zeros(0, np.int16)

    def create_stream(self) -> LoudVad:
        return self

    def accept(self, pcm: np.ndarray) -> list[bool]:
        buf = np.concatenate((self.pending, pcm))
        windows = len(buf) // 512
        self.pending = buf[windows * 512 :]
        return [
            float(np.abs(buf[i * 512 : (i + 1) * 512].astype(np.int32)).mean()) > 1000
            for i in range(windows)
        ]

    def reset(self) -> None:
        self.pending = np.zeros(0, np.int16)


class CountingAsr:
    """Says ``text`` once it has heard any audio; remembers the phrases it was given."""

    name = "counting"
    sample_rate_hz = 16000

    def __init__(self, text: str) -> None:
        self.text = text
        self.phrases: list[Sequence[str] | None] = []

    capabilities = AsrCapabilities(grammar=True, free_text=False)

    def create_stream(self, phrases: Sequence[str] | None = None) -> CountingAsr:
        self.phrases.append(phrases)
        self.heard = 0
        return self

    def accept(self, pcm: np.ndarray) -> Transcript | None:
        self.heard += len(pcm)
        return None

    def finish(self) -> Transcript:
        return Transcript(self.text if self.heard else "", True)

    def close(self) -> None:
        pass


@pytest.fixture
def deps() -> SessionDeps:
    settings = load_settings(websocket={"hello_timeout_s": 2, "idle_timeout_s": 5})
    executor = ThreadPoolExecutor(2)
    metrics = ServerMetrics()
    dialogue, tts = FakeDialogue(), ToneTts(ms_per_char=2)
    return SessionDeps(
        settings=settings,
        vad=LoudVad(),
        asr=CountingAsr("what time is it"),
        dialogue=dialogue,
        tts=tts,
        executor=executor,
        metrics=metrics,
    )


def utterance_frames(version: int) -> list[bytes]:
    encoder = OpusEncoder(16000, 60)
    t = np.arange(960) / 16000
    tone = (12000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    silence = np.zeros(960, np.int16)
    frames = [silence] * 3 + [tone] * 10 + [silence] * 12
    return [encode_frame(encoder.encode(f), version) for f in frames]


async def test_hello_without_version_uses_the_protocol_version_header(
    deps: SessionDeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    channel = MemoryChannel()
    connection = Connection(channel, deps, PeerInfo(device_id="aa:bb", protocol_version=3))
    task = asyncio.create_task(connection.run())
    await channel.inbound.put('{"type":"hello","transport":"websocket"}')
    hello = await channel.wait_text("hello")
    assert list(hello) == ["type", "transport", "session_id", "audio_params"]
    assert hello["audio_params"] == {
        "format": "opus",
        "sample_rate": 24000,
        "channels": 1,
        "frame_duration": 60,
    }
    assert hello["session_id"].isascii()
    await channel.inbound.put('{"session_id":"","type":"listen","state":"start","mode":"auto"}')
    for frame in utterance_frames(3):
        await channel.inbound.put(frame)
    stt = await channel.wait_text("stt")
    assert stt == {"type": "stt", "text": "what time is it"}
    assert list(deps.asr.phrases[-1] or []) == sorted(
        FakeDialogue().answers
    )  # grammar from dialogue
    await channel.wait_text("tts")
    await channel.inbound.put(None)
    await asyncio.wait_for(task, 5)
    lines = [r.getMessage() for r in caplog.records if r.name == "server.session.connection"]
    assert lines and all(f"[{connection.session_id[:8]} aa:bb]" in line for line in lines)


async def test_abort_without_a_turn_sends_nothing_and_audio_before_listen_is_ignored(
    deps: SessionDeps,
) -> None:
    channel = MemoryChannel()
    task = asyncio.create_task(Connection(channel, deps, PeerInfo()).run())
    await channel.inbound.put('{"type":"hello","version":1,"transport":"websocket"}')
    await channel.wait_text("hello")
    for frame in utterance_frames(1):  # no listen start: must not be transcribed
        await channel.inbound.put(frame)
    await channel.inbound.put('{"session_id":"","type":"abort"}')
    # a second hello is answered: the sentinel that everything before it was handled, in order
    await channel.inbound.put('{"type":"hello","version":1,"transport":"websocket"}')
    async with asyncio.timeout(5):
        while len(channel.texts()) < 2:
            channel.changed.clear()
            await channel.changed.wait()
    assert [m["type"] for m in channel.texts()] == ["hello", "hello"]
    assert getattr(deps.asr, "heard", 0) == 0
    await channel.inbound.put(None)
    await asyncio.wait_for(task, 5)


async def test_manual_mode_speech_not_understood_gets_a_spoken_apology(
    deps: SessionDeps,
) -> None:
    deps.asr.text = ""  # type: ignore[attr-defined]
    channel = MemoryChannel()
    task = asyncio.create_task(Connection(channel, deps, PeerInfo()).run())
    await channel.open(listen="manual")
    for frame in utterance_frames(1):
        await channel.inbound.put(frame)
    await channel.inbound.put('{"session_id":"","type":"listen","state":"stop"}')
    sentence = await channel.wait_text("tts")
    assert sentence["state"] == "start"
    assert deps.tts.texts == ["Sorry, I didn't catch that."]  # type: ignore[attr-defined]
    assert "stt" not in [m["type"] for m in channel.texts()]
    await channel.inbound.put(None)
    await asyncio.wait_for(task, 5)
