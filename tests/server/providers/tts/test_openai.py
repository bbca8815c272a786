"""The ``openai`` voice against the mock AI service on loopback: every response format decodes
to the mock's real speech, the first piece arrives before the body ends, failures are coded."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio
from aiohttp import web

from bench.mock_ai import Delay, MockAi, MockAiConfig
from server.config import OpenAITtsSettings, TtsSettings
from server.errors import ErrorCode, ProviderError
from server.providers.tts.openai import OpenAITts

SENTENCE = "The kitchen lamp is now on."


@pytest_asyncio.fixture
async def mock() -> AsyncIterator[MockAi]:
    service = MockAi(MockAiConfig(tts=Delay(0), tts_speed=50.0))
    await service.start()
    yield service
    await service.stop()


def voice(base_url: str, **openai: object) -> OpenAITts:
    return OpenAITts(TtsSettings(openai=OpenAITtsSettings(base_url=base_url, **openai)))


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))


@pytest.mark.parametrize("fmt", ["pcm", "wav", "opus", "mp3"])
async def test_every_format_decodes_to_the_speech(mock: MockAi, fmt: str) -> None:
    if fmt == "mp3":
        pytest.importorskip("av", reason="MP3 is encoded by the mock with PyAV")
    tts = voice(mock.base_url, format=fmt)
    try:
        audio = await tts.synthesize(SENTENCE)
    finally:
        await tts.close()
    reference = await mock._voice_pcm(SENTENCE)  # what the mock spoke, at 24 kHz
    assert audio.sample_rate_hz in (24000, 48000)
    seconds = len(audio.pcm) / audio.sample_rate_hz
    assert seconds == pytest.approx(len(reference) / 24000, abs=0.08)
    assert rms(audio.pcm) == pytest.approx(rms(reference), rel=0.25)  # speech, not silence
    assert mock.stats.speech_formats == [fmt]


async def test_first_piece_plays_before_the_response_ends() -> None:
    mock = MockAi(MockAiConfig(tts=Delay(0), tts_speed=6.0))
    await mock.start()
    tts = voice(mock.base_url, format="pcm")
    arrivals: list[float] = []
    sizes: list[int] = []
    start = time.monotonic()
    try:
        async for piece in tts.synthesize_stream(SENTENCE):
            arrivals.append(time.monotonic() - start)
            sizes.append(len(piece.pcm))
    finally:
        await tts.close()
        await mock.stop()
    total_s = sum(sizes) / 24000
    assert len(sizes) > 3
    assert all(n % 1440 == 0 for n in sizes[:-1])  # whole 60 ms frames at 24 kHz
    # the mock streams at 6× real time: the body takes ~total/6 after its first bytes, and the
    # first piece is here while most of it is still to come (a buffering client gets every piece
    # at once; timed from the first piece, so the mock's synthesis time does not count)
    assert arrivals[-1] - arrivals[0] >= total_s / 6 * 0.6
    assert arrivals[-1] >= total_s / 6 * 0.7


async def test_request_carries_voice_model_speed_and_key() -> None:
    seen: dict[str, object] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.update(await request.json())
        seen["auth"] = request.headers.get("Authorization")
        return web.Response(body=b"\x00\x10" * 2400, content_type="audio/pcm")

    app = web.Application()
    app.router.add_post("/v1/audio/speech", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    tts = OpenAITts(
        TtsSettings(
            speed=1.5,
            openai=OpenAITtsSettings(
                base_url=f"http://127.0.0.1:{runner.addresses[0][1]}/v1",
                model="kokoro",
                voice="af_heart",
                api_key="sk-x",
            ),
        )
    )
    try:
        audio = await tts.synthesize("Hello.")
    finally:
        await tts.close()
        await runner.cleanup()
    assert len(audio.pcm) == 2400
    assert seen == {
        "model": "kokoro",
        "input": "Hello.",
        "voice": "af_heart",
        "response_format": "pcm",
        "speed": 1.5,
        "auth": "Bearer sk-x",
    }


@pytest.mark.parametrize(("status", "attempts", "retryable"), [(422, 1, False), (500, 2, True)])
async def test_http_errors(status: int, attempts: int, retryable: bool) -> None:
    calls: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(1)
        return web.json_response({"error": {"message": "bad voice"}}, status=status)

    app = web.Application()
    app.router.add_post("/v1/audio/speech", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    tts = voice(f"http://127.0.0.1:{runner.addresses[0][1]}/v1", retries=1)
    try:
        with pytest.raises(ProviderError) as caught:
            await tts.synthesize("Hello.")
    finally:
        await tts.close()
        await runner.cleanup()
    assert (caught.value.code, caught.value.retryable) == (ErrorCode.TTS_FAILED, retryable)
    assert "bad voice" in str(caught.value)
    assert len(calls) == attempts


async def test_refused_and_garbage() -> None:
    tts = voice("http://127.0.0.1:9/v1", retries=0)
    with pytest.raises(ProviderError) as caught:
        await tts.synthesize("Hello.")
    assert (caught.value.code, caught.value.retryable) == (ErrorCode.TTS_UNREACHABLE, True)

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=b"<html>not audio</html>", content_type="text/html")

    app = web.Application()
    app.router.add_post("/v1/audio/speech", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    tts = voice(f"http://127.0.0.1:{runner.addresses[0][1]}/v1", format="wav")
    try:
        with pytest.raises(ProviderError) as caught:
            await tts.synthesize("Hello.")
    finally:
        await tts.close()
        await runner.cleanup()
    assert caught.value.code == ErrorCode.TTS_BAD_OUTPUT


async def test_empty_text_is_refused_without_a_request(mock: MockAi) -> None:
    tts = voice(mock.base_url)
    with pytest.raises(ProviderError) as caught:
        await tts.synthesize("   ")
    assert caught.value.code == ErrorCode.TTS_EMPTY_TEXT
    assert mock.stats.speech == 0
