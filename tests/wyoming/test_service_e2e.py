"""The server as a Wyoming service, checked from Home Assistant's side with the ``wyoming``
library's own client: ``describe`` → ``info``, a transcription of real speech (the server's
pocketsphinx in grammar mode hears the local dialogue's commands) and a synthesis (the server's
flite voice) — plain and streamed, as Home Assistant's Assist pipeline sends them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
)

from protocol.audio import resample
from server.app import Providers, Server, build_providers
from server.config import AsrSettings, WyomingAsrSettings
from server.providers.asr.wyoming import WyomingAsr
from tests.e2e.conftest import e2e_settings
from tests.e2e.firmware_client import synthesize
from tests.timing import scaled

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("wyoming_service")
    settings = e2e_settings(tmp, wyoming={"host": "127.0.0.1", "port": 0})
    providers: Providers = build_providers(settings)
    srv = Server(settings, providers=providers)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def read(client: AsyncTcpClient) -> Any:
    client.read_timeout = scaled(15)
    event = await client.read_event()
    assert event is not None, "the service closed the connection"
    return event


async def transcribe(port: int, pcm: np.ndarray, rate: int, channels: int = 1) -> Transcript:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=rate, width=2, channels=channels).event())
        data = np.repeat(pcm, channels) if channels > 1 else pcm
        step = rate * channels // 10  # 100 ms chunks, as a satellite streams them
        for i in range(0, len(data), step):
            raw = data[i : i + step].astype("<i2").tobytes()
            await client.write_event(
                AudioChunk(rate=rate, width=2, channels=channels, audio=raw).event()
            )
        await client.write_event(AudioStop().event())
        while not Transcript.is_type((event := await read(client)).type):
            pass
        return Transcript.from_event(event)


async def collect_audio(client: AsyncTcpClient, until: str) -> tuple[list[np.ndarray], int]:
    """Audio of each audio-start…audio-stop group until an event of type ``until``."""
    groups: list[np.ndarray] = []
    current: list[np.ndarray] = []
    rate = 0
    while True:
        event = await read(client)
        if AudioStart.is_type(event.type):
            start = AudioStart.from_event(event)
            assert (start.width, start.channels) == (2, 1)
            rate, current = start.rate, []
        elif AudioChunk.is_type(event.type):
            current.append(np.frombuffer(AudioChunk.from_event(event).audio, dtype="<i2"))
        elif AudioStop.is_type(event.type):
            groups.append(np.concatenate(current))
        if event.type == until:
            return groups, rate


async def test_describe_answers_info_with_asr_and_tts(server: Server) -> None:
    async with AsyncTcpClient("127.0.0.1", server.wyoming_port) as client:
        await client.write_event(Describe().event())
        info = Info.from_event(await read(client))
    (asr,) = info.asr
    (tts,) = info.tts
    assert asr.installed and asr.models[0].name == "pocketsphinx"
    assert asr.models[0].languages == ["en"]
    assert tts.installed and tts.voices[0].languages == ["en"]
    assert tts.supports_synthesize_streaming


@pytest.mark.parametrize(("rate", "channels"), [(16000, 1), (48000, 2)])
async def test_transcription_of_real_speech(server: Server, rate: int, channels: int) -> None:
    pcm = resample(synthesize("what time is it"), 16000, rate)
    transcript = await transcribe(server.wyoming_port, pcm, rate, channels)
    assert transcript.text == "what time is it"


async def test_synthesis_is_speech_the_server_itself_recognises(server: Server) -> None:
    async with AsyncTcpClient("127.0.0.1", server.wyoming_port) as client:
        await client.write_event(Synthesize(text="what day is it today").event())
        (speech,), rate = await collect_audio(client, AudioStop().event().type)
    assert rate == 16000 and len(speech) / rate > 0.8
    transcript = await transcribe(server.wyoming_port, speech, rate)
    assert transcript.text == "what day is it today"


async def test_streamed_synthesis_speaks_sentence_by_sentence(server: Server) -> None:
    async with AsyncTcpClient("127.0.0.1", server.wyoming_port) as client:
        await client.write_event(SynthesizeStart().event())
        for piece in ("The lamp is ", "on. It is ", "noon."):
            await client.write_event(SynthesizeChunk(text=piece).event())
        await client.write_event(Synthesize(text="The lamp is on. It is noon.").event())
        await client.write_event(SynthesizeStop().event())
        groups, rate = await collect_audio(client, SynthesizeStopped().event().type)
    assert len(groups) == 2  # one audio stream per sentence, the compatibility text not repeated
    assert all(len(g) / rate > 0.4 for g in groups)


async def test_the_wyoming_asr_provider_against_this_service(server: Server) -> None:
    """Our recogniser client and our service, end to end (real speech, real recogniser)."""
    settings = AsrSettings(wyoming=WyomingAsrSettings(port=server.wyoming_port))
    asr = WyomingAsr(settings)
    pcm = synthesize("tell me a joke")

    def blocking() -> str:
        stream = asr.create_stream()
        for i in range(0, len(pcm), 960):
            stream.accept(pcm[i : i + 960])
        text = stream.finish().text
        stream.close()
        return text

    try:
        assert await asyncio.to_thread(blocking) == "tell me a joke"
    finally:
        asr.close()
