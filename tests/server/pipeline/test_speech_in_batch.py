"""SpeechInBatcher with the real engines (silero VAD, pocketsphinx grammar, 60 ms Opus): sessions
that talk at the same time share executor calls and model calls, and each hears what it would
hear alone; one session's failure stays its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from device.audio.sources import say
from protocol.opus import OpusEncoder
from server.config import AsrSettings, VadSettings
from server.pipeline.speech_in import SpeechIn, SpeechInResult
from server.pipeline.speech_in_batch import SpeechInBatcher
from server.pipeline.speech_in_queue import Frame
from server.providers import registry
from server.providers.base import AsrProvider, VadProvider

PHRASES = ["turn on the kitchen lamp", "turn off the kitchen lamp", "what time is it"]
RATE = 16000
FRAME = 960


class CountingExecutor(ThreadPoolExecutor):
    """One thread; counts the calls it was given."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.calls = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.calls += 1
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
def executor() -> Iterator[CountingExecutor]:
    pool = CountingExecutor()
    yield pool
    pool.shutdown()


@pytest.fixture(scope="module")
def engines() -> tuple[VadProvider, AsrProvider]:
    vad = registry.VAD.create("silero", VadSettings())
    asr = registry.ASR.create("pocketsphinx", AsrSettings(pool_size=8))
    return vad, asr


def packets(text: str) -> list[bytes]:
    """``text`` spoken by flite after 300 ms of silence, with 1.5 s of silence after, as 60 ms
    Opus packets."""
    pcm = np.concatenate([np.zeros(4800, np.int16), say(text), np.zeros(24000, np.int16)])
    encoder = OpusEncoder(RATE, 60, complexity=0, dtx=True)
    return [encoder.encode(pcm[i : i + FRAME]) for i in range(0, len(pcm) - FRAME + 1, FRAME)]


def processor(engines: tuple[VadProvider, AsrProvider]) -> SpeechIn:
    up = SpeechIn(*engines, VadSettings())
    up.set_phrases(PHRASES)
    up.begin(endpointing=True)
    return up


async def hear(batcher: SpeechInBatcher, up: SpeechIn, audio: list[bytes]) -> str | None:
    """Feed ``audio`` two packets per call, as a session's worker would; the final text."""
    for i in range(0, len(audio), 2):
        frames = [Frame(0, p, (i + k + 1) * 0.06) for k, p in enumerate(audio[i : i + 2])]
        results: list[SpeechInResult] = await batcher.feed(up, frames)
        for result in results:
            if result.final_text is not None:
                return result.final_text
    return None


async def test_sessions_talking_at_once_share_calls_and_hear_what_they_say(
    engines: tuple[VadProvider, AsrProvider], executor: CountingExecutor
) -> None:
    said = ["turn on the kitchen lamp", "what time is it", "turn off the kitchen lamp"] * 2
    audio = [packets(text) for text in said]
    alone_executor = CountingExecutor()
    alone = SpeechInBatcher(engines[0], alone_executor, calls=1)
    expected = [await hear(alone, processor(engines), a) for a in audio]
    assert expected == said
    together = SpeechInBatcher(engines[0], executor, calls=1)
    sessions = [processor(engines) for _ in audio]
    got = await asyncio.gather(
        *(hear(together, up, a) for up, a in zip(sessions, audio, strict=True))
    )
    assert got == expected
    # six sessions went through in at most half the executor calls they take one by one
    assert executor.calls * 2 <= alone_executor.calls
    alone_executor.shutdown()


async def test_one_sessions_failure_is_its_own(
    engines: tuple[VadProvider, AsrProvider],
    monkeypatch: pytest.MonkeyPatch,
    executor: CountingExecutor,
) -> None:
    batcher = SpeechInBatcher(engines[0], executor, calls=1)
    broken, healthy = processor(engines), processor(engines)

    def fail(*args: Any, **kwargs: Any) -> SpeechInResult:
        raise RuntimeError("decoder crashed")

    monkeypatch.setattr(broken, "feed_pcm", fail)
    audio = packets("turn on the kitchen lamp")

    async def broken_session() -> str:
        try:
            await hear(batcher, broken, audio)
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    outcome, text = await asyncio.gather(broken_session(), hear(batcher, healthy, audio))
    assert outcome == "decoder crashed"
    assert text == "turn on the kitchen lamp"


async def test_a_corrupt_packet_is_reported_and_the_rest_still_heard(
    engines: tuple[VadProvider, AsrProvider], executor: CountingExecutor
) -> None:
    batcher = SpeechInBatcher(engines[0], executor, calls=2)
    up = processor(engines)
    audio = packets("what time is it")
    results = await batcher.feed(up, [Frame(0, b"\xff\xfe\x00garbage", 0.06)])
    assert [r.errors for r in results] == [["corrupt-audio"]]
    assert await hear(batcher, up, audio) == "what time is it"


async def test_a_session_that_went_away_is_not_processed(
    engines: tuple[VadProvider, AsrProvider], executor: CountingExecutor
) -> None:
    batcher = SpeechInBatcher(engines[0], executor, calls=1)
    first, gone = processor(engines), processor(engines)
    audio = packets("what time is it")
    busy = asyncio.ensure_future(batcher.feed(first, [Frame(0, audio[0], 0.06)]))
    waiting = asyncio.ensure_future(batcher.feed(gone, [Frame(0, audio[0], 0.06)]))
    await asyncio.sleep(0)
    waiting.cancel()  # its session closed while the first call ran
    await busy
    await asyncio.sleep(0.05)
    assert executor.calls == 1  # the waiting session's frames were never run
