"""The Wyoming service's answers to what a client may send, with test-double providers (no
engines): failures and malformed events get an ``error`` event with a code, unknown events are
ignored, audio is converted and cut at ``max_audio_s``, plain synthesis is one audio stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest_asyncio
from wyoming.asr import Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize

from protocol.audio import Pcm
from server.config import WyomingServiceSettings
from server.providers.base import AsrCapabilities
from server.providers.base import Transcript as AsrTranscript
from server.wyoming import WyomingService
from tests.server.fakes import ToneTts
from tests.timing import scaled


class CountingAsr:
    """Says how much 16 kHz audio it was given (and which phrases)."""

    name = "counting"
    sample_rate_hz = 16000
    capabilities = AsrCapabilities(languages=frozenset({"en", "zh"}))

    def create_stream(self, phrases: Sequence[str] | None = None) -> Any:
        asr = self

        class Stream:
            samples = 0

            def accept(self, pcm: Pcm) -> None:
                assert pcm.dtype == np.int16
                self.samples += len(pcm)

            def finish(self) -> AsrTranscript:
                return AsrTranscript(f"{self.samples} samples", True, language="en")

            def close(self) -> None:
                asr.closed += 1

        return Stream()

    closed = 0


@pytest_asyncio.fixture
async def service() -> AsyncIterator[WyomingService]:
    with ThreadPoolExecutor(2) as executor:
        svc = WyomingService(
            CountingAsr(),
            ToneTts(fail_on="boom"),
            executor,
            WyomingServiceSettings(host="127.0.0.1", port=0, max_audio_s=1.0),
        )
        await svc.start()
        yield svc
        await svc.stop()


async def exchange(port: int, events: list[Event], until: str) -> list[Event]:
    received: list[Event] = []
    async with AsyncTcpClient("127.0.0.1", port) as client:
        client.read_timeout = scaled(5)
        for event in events:
            await client.write_event(event)
        while True:
            event = await client.read_event()
            assert event is not None
            received.append(event)
            if event.type == until:
                return received


async def test_describe_after_an_unknown_event(service: WyomingService) -> None:
    (info,) = await exchange(
        service.port, [Event(type="not-a-real-event"), Describe().event()], "info"
    )
    parsed = Info.from_event(info)
    assert parsed.asr[0].models[0].languages == ["en", "zh"]
    assert parsed.tts[0].voices[0].name == "tone"


async def test_audio_is_converted_and_cut_at_max_audio(service: WyomingService) -> None:
    stereo_44k = np.zeros(2 * 44100 * 2, np.int16).tobytes()  # 2 s of 44.1 kHz stereo
    events = [
        AudioStart(rate=44100, width=2, channels=2).event(),
        AudioChunk(
            rate=44100, width=2, channels=2, audio=stereo_44k[: len(stereo_44k) // 4]
        ).event(),
        AudioChunk(rate=44100, width=2, channels=2, audio=stereo_44k).event(),
        AudioStop().event(),
    ]
    received = await exchange(service.port, events, "transcript")
    text = Transcript.from_event(received[-1]).text
    # the first 0.5 s chunk is converted to 8,000 samples; the next one passes 1 s and is cut
    assert text == f"{8000 + 32000} samples"


async def test_synthesis_and_its_failure(service: WyomingService) -> None:
    received = await exchange(service.port, [Synthesize(text="hello").event()], "audio-stop")
    start = AudioStart.from_event(received[0])
    samples = sum(AudioChunk.from_event(e).samples for e in received[1:-1])
    assert (start.rate, samples) == (16000, (5 * 60 * 16))
    (error,) = await exchange(service.port, [Synthesize(text="boom").event()], "error")
    assert Error.from_event(error).code == "tts-failed"


async def test_malformed_event_is_answered(service: WyomingService) -> None:
    (error,) = await exchange(service.port, [Event(type="synthesize", data={})], "error")
    assert Error.from_event(error).code == "bad-event"


async def test_no_asr_offered_says_so() -> None:
    with ThreadPoolExecutor(1) as executor:
        svc = WyomingService(
            None, ToneTts(), executor, WyomingServiceSettings(host="127.0.0.1", port=0)
        )
        await svc.start()
        try:
            (info,) = await exchange(svc.port, [Describe().event()], "info")
            assert Info.from_event(info).asr == []
            (error,) = await exchange(
                svc.port, [AudioStart(rate=16000, width=2, channels=1).event()], "error"
            )
        finally:
            await svc.stop()
    assert Error.from_event(error).code == "asr-unavailable"
