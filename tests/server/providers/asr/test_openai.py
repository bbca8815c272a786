"""The ``openai`` recogniser against the mock AI service on loopback (and failing endpoints):
the utterance is uploaded as one WAV with language and prompt, and failures are coded errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio
from aiohttp import web

from bench.mock_ai import Delay, MockAi, MockAiConfig
from server.config import AsrSettings, OpenAIAsrSettings
from server.errors import ErrorCode, ProviderError
from server.providers.asr.openai import OpenAIAsr, upload_language

SCRIPT = ((1.0, "short words"), (float("inf"), "a longer sentence"))


@pytest_asyncio.fixture
async def mock() -> AsyncIterator[MockAi]:
    service = MockAi(MockAiConfig(asr=Delay(0), transcripts=SCRIPT))
    await service.start()
    yield service
    await service.stop()


def provider(base_url: str, *, language: str = "en-US", **openai: object) -> OpenAIAsr:
    settings = OpenAIAsrSettings(base_url=base_url, **openai)
    return OpenAIAsr(AsrSettings(language=language, openai=settings))


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (3000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)


async def run_utterance(asr: OpenAIAsr, pcm: np.ndarray) -> str:
    def blocking() -> str:
        stream = asr.create_stream()
        try:
            for chunk in np.array_split(pcm, 10):
                assert stream.accept(chunk) is None  # no partials
            return stream.finish().text
        finally:
            stream.close()

    return await asyncio.to_thread(blocking)


def test_capabilities_say_not_streaming() -> None:
    asr = provider("http://127.0.0.1:9/v1")
    caps = asr.capabilities
    assert (caps.streaming, caps.partials, caps.free_text, caps.grammar) == (
        False,
        False,
        True,
        False,
    )


@pytest.mark.parametrize(
    ("explicit", "asr_language", "sent"),
    [(None, "en-US", "en"), (None, "zh-CN", "zh"), (None, "auto", None), ("de", "en-US", "de")],
)
def test_language_sent(explicit: str | None, asr_language: str, sent: str | None) -> None:
    assert upload_language(explicit, asr_language) == sent


async def test_transcript_comes_from_the_uploaded_audio_length(mock: MockAi) -> None:
    asr = provider(mock.base_url)
    try:
        assert await run_utterance(asr, tone(0.6)) == "short words"
        assert await run_utterance(asr, tone(1.8)) == "a longer sentence"
    finally:
        asr.close()
    assert mock.stats.uploads_s == pytest.approx([0.6, 1.8], abs=0.001)


async def test_empty_utterance_uploads_nothing(mock: MockAi) -> None:
    asr = provider(mock.base_url)
    try:
        stream = asr.create_stream()
        assert (await asyncio.to_thread(stream.finish)).text == ""
    finally:
        asr.close()
    assert mock.stats.transcriptions == 0


async def test_form_carries_model_language_prompt_and_key() -> None:
    seen: dict[str, object] = {}

    async def handler(request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        seen.update({k: form[k] for k in ("model", "language", "prompt", "response_format")})
        seen["head"] = upload.file.read(4)
        seen["type"] = upload.content_type
        seen["auth"] = request.headers.get("Authorization")
        return web.json_response({"text": " Hello there. "})

    app = web.Application()
    app.router.add_post("/v1/audio/transcriptions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    asr = provider(
        f"http://127.0.0.1:{port}/v1", model="whisper-large-v3", prompt="Xiaozhi", api_key="sk-test"
    )
    try:
        assert await run_utterance(asr, tone(0.5)) == "Hello there."
    finally:
        asr.close()
        await runner.cleanup()
    assert seen == {
        "model": "whisper-large-v3",
        "language": "en",
        "prompt": "Xiaozhi",
        "response_format": "json",
        "head": b"RIFF",
        "type": "audio/wav",
        "auth": "Bearer sk-test",
    }


async def failing_endpoint(status: int) -> tuple[web.AppRunner, str, list[int]]:
    calls: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        calls.append(status)
        return web.json_response({"error": {"message": "nope"}}, status=status)

    app = web.Application()
    app.router.add_post("/v1/audio/transcriptions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/v1", calls


@pytest.mark.parametrize(("status", "attempts", "retryable"), [(400, 1, False), (503, 2, True)])
async def test_http_errors_retry_only_5xx(status: int, attempts: int, retryable: bool) -> None:
    runner, url, calls = await failing_endpoint(status)
    asr = provider(url, retries=1)
    try:
        with pytest.raises(ProviderError) as caught:
            await run_utterance(asr, tone(0.3))
    finally:
        asr.close()
        await runner.cleanup()
    assert caught.value.code == ErrorCode.ASR_FAILED
    assert caught.value.retryable is retryable
    assert str(status) in str(caught.value)
    assert len(calls) == attempts


async def test_refused_connection_is_retryable_unreachable() -> None:
    asr = provider("http://127.0.0.1:9/v1", retries=0, connect_timeout_s=1)
    try:
        with pytest.raises(ProviderError) as caught:
            await run_utterance(asr, tone(0.3))
    finally:
        asr.close()
    assert caught.value.code == ErrorCode.ASR_UNREACHABLE
    assert caught.value.retryable


async def test_slow_endpoint_times_out_as_asr_timeout() -> None:
    service = MockAi(MockAiConfig(asr=Delay(700)))
    await service.start()
    asr = provider(service.base_url, retries=0, timeout_s=0.3)
    try:
        with pytest.raises(ProviderError) as caught:
            await run_utterance(asr, tone(0.3))
    finally:
        asr.close()
        await service.stop()
    assert caught.value.code == ErrorCode.ASR_TIMEOUT
    assert caught.value.retryable


async def test_finish_async_awaits_the_upload_without_blocking_the_loop(mock: MockAi) -> None:
    """The mock runs on this very loop: a blocking finish here would deadlock; finish_async
    lets it answer (and the loop keeps ticking meanwhile)."""
    mock.config = MockAiConfig(asr=Delay(150), transcripts=SCRIPT)
    asr = provider(mock.base_url)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        stream = asr.create_stream()
        stream.accept(tone(1.5))
        transcript = await stream.finish_async()
        stream.close()
    finally:
        task.cancel()
        asr.close()
    assert transcript.text == "a longer sentence"
    assert ticks >= 8  # ~150 ms of upload: the loop ran all along
