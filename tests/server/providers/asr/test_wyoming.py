"""The ``wyoming`` recogniser against a Wyoming service built in the test from the ``wyoming``
library: audio streams while the user speaks, the transcript comes after ``audio-stop``, and a
refused, failing or silent service is a coded error (retried where a retry can help)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio

from server.config import AsrSettings, WyomingAsrSettings
from server.errors import ErrorCode, ProviderError
from server.providers.asr.wyoming import WyomingAsr
from tests.wyoming.scripted_service import ScriptedService, tone


@pytest_asyncio.fixture
async def service() -> AsyncIterator[ScriptedService]:
    svc = ScriptedService()
    await svc.start()
    yield svc
    await svc.stop()


def recogniser(port: int, **wyoming: object) -> WyomingAsr:
    settings = WyomingAsrSettings(host="127.0.0.1", port=port, **wyoming)
    return WyomingAsr(AsrSettings(language="en-US", wyoming=settings))


async def speak(asr: WyomingAsr, pcm: np.ndarray, pace_s: float = 0.0) -> tuple[str, float]:
    """Feed 60 ms chunks (``pace_s`` apart); returns (transcript, monotonic time of finish)."""

    def blocking() -> tuple[str, float]:
        stream = asr.create_stream()
        try:
            for start in range(0, len(pcm), 960):
                assert stream.accept(pcm[start : start + 960]) is None
                time.sleep(pace_s)
            finished_at = time.monotonic()
            return stream.finish().text, finished_at
        finally:
            stream.close()

    return await asyncio.to_thread(blocking)


async def test_audio_streams_while_speaking_and_the_transcript_follows(
    service: ScriptedService,
) -> None:
    asr = recogniser(service.port, model="tiny-int8")
    try:
        text, finished_at = await speak(asr, tone(0.96), pace_s=0.02)
    finally:
        asr.close()
    assert text == "heard 960 ms"
    assert service.log.transcribes == [{"name": "tiny-int8", "language": "en"}]
    # the chunks reached the service while the "user" was still speaking, not at the end
    assert service.log.chunk_times[0] < finished_at - 0.2
    assert asr.capabilities.streaming and not asr.capabilities.partials


async def test_streamed_transcript_events_are_joined(service: ScriptedService) -> None:
    service.streaming_transcripts = True
    asr = recogniser(service.port)
    try:
        text, _ = await speak(asr, tone(0.48))
    finally:
        asr.close()
    assert text == "heard 480 ms"


async def test_error_event_is_a_coded_failure(service: ScriptedService) -> None:
    service.fail = "error"
    asr = recogniser(service.port, retries=2)
    try:
        with pytest.raises(ProviderError) as caught:
            await speak(asr, tone(0.3))
    finally:
        asr.close()
    assert caught.value.code == ErrorCode.ASR_FAILED and not caught.value.retryable
    assert "model crashed" in str(caught.value)
    assert service.log.connections == 1  # an answer is not retried


async def test_slow_service_times_out(service: ScriptedService) -> None:
    service.asr_delay_s = 2.0
    asr = recogniser(service.port, timeout_s=0.3, retries=0)
    try:
        with pytest.raises(ProviderError) as caught:
            await speak(asr, tone(0.3))
    finally:
        asr.close()
    assert caught.value.code == ErrorCode.ASR_TIMEOUT and caught.value.retryable


async def test_refused_connection_is_retried_then_unreachable() -> None:
    asr = recogniser(9, retries=1, connect_timeout_s=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(ProviderError) as caught:
            await speak(asr, tone(0.3))
    finally:
        asr.close()
    assert caught.value.code == ErrorCode.ASR_UNREACHABLE and caught.value.retryable
    assert "tcp://127.0.0.1:9" in str(caught.value)
    assert time.monotonic() - started < 3


async def test_service_down_at_speech_start_is_recovered_by_the_retry() -> None:
    """The first connection is refused; ``finish`` sends the whole utterance again."""
    svc = ScriptedService()
    await svc.start()
    port = svc.port
    await svc.stop()
    asr = recogniser(port, retries=2)
    try:
        stream = asr.create_stream()
        await asyncio.to_thread(stream.accept, tone(0.6))
        await asyncio.sleep(0.1)  # the live connection has failed by now
        revived = ScriptedService()
        await revived.start(port)
        try:
            text = (await asyncio.to_thread(stream.finish)).text
        finally:
            await revived.stop()
    finally:
        asr.close()
    assert text == "heard 600 ms"


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from server.errors import ProviderUnavailable

    monkeypatch.setitem(sys.modules, "wyoming.asr", None)  # import fails as if not installed
    with pytest.raises(ProviderUnavailable, match=r"xiaozhi-py\[wyoming\]"):
        WyomingAsr(AsrSettings())


async def test_finish_async_waits_on_the_loop(service: ScriptedService) -> None:
    service.asr_delay_s = 0.1
    asr = recogniser(service.port)
    try:
        stream = asr.create_stream()
        for start in range(0, 9600, 960):
            stream.accept(tone(0.6)[start : start + 960])
        assert (await stream.finish_async()).text == "heard 600 ms"
        stream.close()
        dead = recogniser(9, retries=0, connect_timeout_s=0.5)
        stream = dead.create_stream()
        stream.accept(tone(0.1))
        with pytest.raises(ProviderError) as caught:
            await stream.finish_async()
        dead.close()
    finally:
        asr.close()
    assert caught.value.code == ErrorCode.ASR_UNREACHABLE
