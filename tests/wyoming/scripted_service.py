"""A Wyoming ASR + TTS service built in the test from the ``wyoming`` library's own server
classes (``AsyncTcpServer``/``AsyncEventHandler``), as wyoming-faster-whisper and wyoming-piper
are built.

ASR answers ``heard N ms`` (the audio it received, so a test sees that every chunk arrived)
and records when each chunk came; with ``streaming_transcripts`` it answers with
``transcript-start``/``-chunk``/``-stop`` only. TTS speaks the text with flite (real speech) in
1,024-sample chunks, pausing ``chunk_pause_s`` between them. ``fail`` = ``"error"`` answers an
``error`` event instead.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import AsrModel, AsrProgram, Attribution, Describe, Info, TtsProgram, TtsVoice
from wyoming.server import AsyncEventHandler, AsyncTcpServer
from wyoming.tts import Synthesize

from tests.e2e.firmware_client import synthesize as flite_16k

ATTRIBUTION = Attribution(name="test", url="http://127.0.0.1/")


@dataclass
class ServiceLog:
    transcribes: list[dict[str, Any]] = field(default_factory=list)
    chunk_times: list[float] = field(default_factory=list)
    stop_times: list[float] = field(default_factory=list)
    syntheses: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0


class ScriptedHandler(AsyncEventHandler):
    def __init__(self, service: ScriptedService, *args: Any) -> None:
        super().__init__(*args)
        self.service = service
        self.samples = 0
        service.log.connections += 1

    async def handle_event(self, event: Event) -> bool:
        svc, log = self.service, self.service.log
        if Describe.is_type(event.type):
            await self.write_event(svc.info().event())
        elif Transcribe.is_type(event.type):
            log.transcribes.append(Transcribe.from_event(event).event().data)
        elif AudioStart.is_type(event.type):
            self.samples = 0
        elif AudioChunk.is_type(event.type):
            chunk = AudioChunk.from_event(event)
            assert (chunk.rate, chunk.width, chunk.channels) == (16000, 2, 1)
            self.samples += chunk.samples
            log.chunk_times.append(time.monotonic())
        elif AudioStop.is_type(event.type):
            log.stop_times.append(time.monotonic())
            await asyncio.sleep(svc.asr_delay_s)
            if svc.fail == "error":
                await self.write_event(Error(text="model crashed", code="boom").event())
                return False
            text = f"heard {self.samples * 1000 // 16000} ms"
            if svc.streaming_transcripts:
                await self.write_event(TranscriptStart(language="en").event())
                for word in text.split(" "):
                    await self.write_event(TranscriptChunk(text=word + " ").event())
                await self.write_event(TranscriptStop().event())
            else:
                await self.write_event(Transcript(text=text, language="en").event())
            return False
        elif Synthesize.is_type(event.type):
            request = Synthesize.from_event(event)
            log.syntheses.append(request.event().data)
            if svc.fail == "error":
                await self.write_event(Error(text="no such voice", code="voice").event())
                return False
            pcm = flite_16k(request.text)
            await self.write_event(AudioStart(rate=16000, width=2, channels=1).event())
            for start in range(0, len(pcm), 1024):
                if start:
                    await asyncio.sleep(svc.chunk_pause_s)
                raw = pcm[start : start + 1024].astype("<i2").tobytes()
                await self.write_event(
                    AudioChunk(rate=16000, width=2, channels=1, audio=raw).event()
                )
            await self.write_event(AudioStop().event())
            return False
        return True


class ScriptedService:
    def __init__(self) -> None:
        self.log = ServiceLog()
        self.asr_delay_s = 0.0
        self.chunk_pause_s = 0.0
        self.streaming_transcripts = False
        self.fail: str | None = None
        self.port = 0
        self._server: AsyncTcpServer | None = None

    def info(self) -> Info:
        model = AsrModel(
            name="scripted",
            attribution=ATTRIBUTION,
            installed=True,
            description=None,
            version="1",
            languages=["en"],
        )
        voice = TtsVoice(
            name="flite-slt",
            attribution=ATTRIBUTION,
            installed=True,
            description=None,
            version="1",
            languages=["en"],
        )
        return Info(
            asr=[
                AsrProgram(
                    name="scripted-asr",
                    attribution=ATTRIBUTION,
                    installed=True,
                    description=None,
                    version="1",
                    models=[model],
                )
            ],
            tts=[
                TtsProgram(
                    name="scripted-tts",
                    attribution=ATTRIBUTION,
                    installed=True,
                    description=None,
                    version="1",
                    voices=[voice],
                )
            ],
        )

    async def start(self, port: int = 0) -> None:
        self._server = AsyncTcpServer("127.0.0.1", port)
        await self._server.start(lambda r, w: ScriptedHandler(self, r, w))
        inner = self._server._server  # the asyncio.Server (the library keeps it private)
        assert inner is not None
        self.port = int(inner.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()


def tone(seconds: float, rate_hz: int = 16000) -> np.ndarray:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    return (3000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
