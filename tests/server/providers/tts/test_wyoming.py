"""The ``wyoming`` voice against a Wyoming service built in the test from the ``wyoming``
library: real flite speech arrives in 60 ms pieces as the service sends it, the voice is asked
by name, and a refused or failing service is a coded error."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio

from server.config import TtsSettings, WyomingTtsSettings
from server.errors import ErrorCode, ProviderError
from server.providers.tts.wyoming import WyomingTts
from tests.e2e.firmware_client import synthesize as flite_16k
from tests.wyoming.scripted_service import ScriptedService

SENTENCE = "The kitchen lamp is now on."


@pytest_asyncio.fixture
async def service() -> AsyncIterator[ScriptedService]:
    svc = ScriptedService()
    await svc.start()
    yield svc
    await svc.stop()


def voice(port: int, **wyoming: object) -> WyomingTts:
    return WyomingTts(
        TtsSettings(wyoming=WyomingTtsSettings(host="127.0.0.1", port=port, **wyoming))
    )


async def test_whole_sentence_is_the_services_speech(service: ScriptedService) -> None:
    tts = voice(service.port, voice="flite-slt", speaker="0")
    audio = await tts.synthesize(SENTENCE)
    assert audio.sample_rate_hz == 16000
    assert np.array_equal(audio.pcm, flite_16k(SENTENCE))
    assert service.log.syntheses == [
        {"text": SENTENCE, "voice": {"name": "flite-slt", "speaker": "0"}}
    ]


async def test_pieces_arrive_while_the_service_still_speaks(service: ScriptedService) -> None:
    service.chunk_pause_s = 0.02
    tts = voice(service.port)
    start = time.monotonic()
    arrivals, sizes = [], []
    async for piece in tts.synthesize_stream(SENTENCE):
        arrivals.append(time.monotonic() - start)
        sizes.append(len(piece.pcm))
    assert len(sizes) > 5
    assert all(n % 960 == 0 for n in sizes[:-1])  # whole 60 ms frames at 16 kHz
    assert arrivals[0] < arrivals[-1] / 4
    assert tts.capabilities.streaming


async def test_error_event_and_refused_connection(service: ScriptedService) -> None:
    service.fail = "error"
    with pytest.raises(ProviderError) as caught:
        await voice(service.port, retries=2).synthesize("Hello.")
    assert caught.value.code == ErrorCode.TTS_FAILED and not caught.value.retryable
    assert "no such voice" in str(caught.value)
    assert service.log.connections == 1

    with pytest.raises(ProviderError) as caught:
        await voice(9, retries=1).synthesize("Hello.")
    assert caught.value.code == ErrorCode.TTS_UNREACHABLE and caught.value.retryable
