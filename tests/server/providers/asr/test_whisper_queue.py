"""Whisper on its own thread with a bounded wait (server/providers/asr/decode_queue.py), with a
fake model: a decode blocks until the test opens its gate, so "Whisper is busy" is exact.

What a user sees: a command on the grammar fast path is answered while Whisper is busy, the
shared executor stays free, a question Whisper cannot start in time is refused (the session
then says it cannot listen right now) and never decoded, and questions are decoded in order.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from protocol.audio import Pcm
from server.config import AsrSettings, WhisperSettings
from server.errors import ErrorCode, ProviderError
from server.metrics import ServerMetrics
from server.providers.asr.twopass import TwoPassAsr, TwoPassStream
from server.providers.asr.whisper import WhisperAsr
from server.providers.base import Transcript

COMMAND = 9
"""Audio tagged 9 is the command the (fake) grammar pass trusts."""
PHRASES = ["turn on the lamp", "what time is it"]
CANONICAL = 7
"""Audio tagged 7 is heard by (fake) Whisper as one of the phrases, with Whisper's spelling."""


class GatedWhisper(WhisperAsr):
    """The real provider (queue, verdict, streams) over a fake model whose decode waits for
    ``gate``; the text says which utterance it was (audio tagged by its sample value)."""

    def __init__(self, max_wait_s: float = 0.0) -> None:
        self.gate = threading.Event()
        self.decoding = threading.Event()
        self.decoded: list[int] = []
        self.threads: set[str] = set()
        whisper = WhisperSettings(max_queue_wait_s=max_wait_s)
        super().__init__(AsrSettings(language="en-US", whisper=whisper))

    def _load_model(self) -> None:
        self.multilingual = False
        self._t2s = None

    def _decode_locked(self, audio: Any, lang: str | None, window_s: int) -> Any:
        tag = round(float(audio[0]) * 32768)
        self.threads.add(threading.current_thread().name)
        self.decoding.set()
        assert self.gate.wait(5), "the test never opened the gate"
        self.decoded.append(tag)
        text = "Turn on the lamp." if tag == CANONICAL else f"question {tag}"
        return text, "en", -0.1, 0.01


class FakeGrammarStream:
    """The grammar pass: trusts the command's audio, rejects anything else."""

    def __init__(self, threads: list[str]) -> None:
        self._threads = threads
        self._tag: int | None = None

    def accept(self, pcm: Pcm) -> Transcript | None:
        if self._tag is None:
            self._tag = int(pcm[0])
        return None

    def finish(self) -> Transcript:
        self._threads.append(threading.current_thread().name)
        if self._tag == COMMAND:
            return Transcript("turn on the lamp", is_final=True, confidence=0.9)
        return Transcript("what time is it", is_final=True, rejected=True)

    def close(self) -> None:
        pass


class FakeGrammar:
    def __init__(self) -> None:
        self.threads: list[str] = []

    def create_stream(self, phrases: Sequence[str] | None = None) -> FakeGrammarStream:
        return FakeGrammarStream(self.threads)

    def create_speaker_stream(
        self, phrases: Sequence[str] | None, speaker: str | None
    ) -> FakeGrammarStream:
        return self.create_stream(phrases)


def utterance(tag: int, seconds: float = 1.0) -> Pcm:
    return np.full(int(16000 * seconds), tag, dtype=np.int16)


def twopass(whisper: WhisperAsr) -> tuple[TwoPassAsr, FakeGrammar]:
    grammar = FakeGrammar()
    asr = TwoPassAsr(AsrSettings(language="en-US"), first=grammar, second=whisper)  # type: ignore[arg-type]
    return asr, grammar


def spoken(asr: TwoPassAsr, tag: int) -> TwoPassStream:
    stream = asr.create_stream(PHRASES)
    stream.accept(utterance(tag))
    return stream


async def until(check: Any, timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


@pytest.fixture
def whisper() -> Any:
    provider = GatedWhisper()
    yield provider
    provider.gate.set()
    provider.close()


async def test_a_command_is_answered_while_whisper_is_busy_and_the_executor_stays_free(
    whisper: GatedWhisper,
) -> None:
    asr, grammar = twopass(whisper)
    shared = ThreadPoolExecutor(2, thread_name_prefix="shared")
    loop = asyncio.get_running_loop()
    try:
        questions = [asyncio.create_task(spoken(asr, tag).finish_async()) for tag in (1, 2)]
        await until(lambda: whisper.decoding.is_set() and whisper.queue_depth == 1)
        # Whisper decodes question 1, question 2 waits for it: both shared threads are free
        both = threading.Barrier(2, timeout=1.0)
        await asyncio.wait_for(
            asyncio.gather(*(loop.run_in_executor(shared, both.wait) for _ in range(2))), 2.0
        )
        command = spoken(asr, COMMAND)
        started = time.monotonic()
        heard = await asyncio.wait_for(command.finish_async(), 2.0)
        elapsed = time.monotonic() - started
        assert heard.text == "turn on the lamp" and command.timings.path == "grammar"
        assert command.timings.first_pass_s is not None and command.timings.second_pass_s is None
        assert elapsed < 0.5, elapsed  # typically ~1 ms: it never waited for Whisper
        assert not any(q.done() for q in questions)  # Whisper is still on question 1
        whisper.gate.set()
        answers = await asyncio.wait_for(asyncio.gather(*questions), 5.0)
    finally:
        shared.shutdown()
    assert [a.text for a in answers] == ["question 1", "question 2"]
    assert whisper.threads == {"xiaozhi-whisper_0"}  # every decode on Whisper's own thread
    main = threading.current_thread().name
    assert grammar.threads and not {main, "xiaozhi-whisper_0"} & set(grammar.threads)
    assert not any(name.startswith("shared") for name in grammar.threads)


async def test_a_question_whisper_cannot_start_in_time_is_refused_and_never_decoded() -> None:
    whisper = GatedWhisper(max_wait_s=0.15)
    try:
        busy = whisper.create_stream()
        busy.accept(utterance(1))
        first = asyncio.create_task(busy.finish_async())
        await asyncio.to_thread(whisper.decoding.wait, 2)
        stream = whisper.create_stream()
        stream.accept(utterance(2))
        started = time.monotonic()
        with pytest.raises(ProviderError) as refused:
            await stream.finish_async()
        waited = time.monotonic() - started
        assert refused.value.code == ErrorCode.ASR_QUEUE_TIMEOUT == "asr-queue-timeout"
        assert refused.value.retryable and "busy" in str(refused.value)
        assert 0.1 <= waited < 1.0, waited
        assert whisper.queue_depth == 0 and whisper.queue.refused == 1
        await asyncio.sleep(0.2)  # the request in progress is not refused, however long it takes
        whisper.gate.set()
        assert (await first).text == "question 1"
    finally:
        whisper.gate.set()
        whisper.close()
    assert whisper.decoded == [1]  # the refused one never reached the model


async def test_a_decode_in_progress_is_not_refused(whisper: GatedWhisper) -> None:
    whisper.queue.max_wait_s = 0.1
    stream = whisper.create_stream()
    stream.accept(utterance(1))
    task = asyncio.create_task(stream.finish_async())
    await asyncio.to_thread(whisper.decoding.wait, 2)
    await asyncio.sleep(0.3)
    whisper.gate.set()
    assert (await task).text == "question 1"


async def test_queued_questions_are_decoded_in_arrival_order(whisper: GatedWhisper) -> None:
    streams = []
    for tag in range(1, 6):
        stream = whisper.create_stream()
        stream.accept(utterance(tag))
        streams.append(stream)
    tasks = [asyncio.create_task(s.finish_async()) for s in streams[:3]]
    await until(lambda: whisper.queue_depth == 2)
    # a blocking caller (batch transcription, benchmarks) takes its turn in the same queue
    blocking = asyncio.create_task(asyncio.to_thread(streams[3].finish))
    await until(lambda: whisper.queue_depth == 3)
    tasks += [blocking, asyncio.create_task(streams[4].finish_async())]
    await until(lambda: whisper.queue_depth == 4)
    whisper.gate.set()
    answers = await asyncio.wait_for(asyncio.gather(*tasks), 5.0)
    assert [a.text for a in answers] == [f"question {tag}" for tag in range(1, 6)]
    assert whisper.decoded == [1, 2, 3, 4, 5]


async def test_a_cancelled_session_leaves_the_queue(whisper: GatedWhisper) -> None:
    tasks = []
    for tag in (1, 2, 3):
        stream = whisper.create_stream()
        stream.accept(utterance(tag))
        tasks.append(asyncio.create_task(stream.finish_async()))
    await until(lambda: whisper.queue_depth == 2)
    tasks[1].cancel()
    await until(lambda: whisper.queue_depth == 1)
    whisper.gate.set()
    assert (await tasks[2]).text == "question 3"
    assert whisper.decoded == [1, 3] and tasks[1].cancelled()


async def test_finish_and_finish_async_agree(whisper: GatedWhisper) -> None:
    whisper.gate.set()
    asr, _ = twopass(whisper)
    for tag, path, text in ((COMMAND, "grammar", "turn on the lamp"),
                            (CANONICAL, "whisper", "turn on the lamp"),
                            (3, "whisper", "question 3")):  # fmt: skip
        blocking, awaited = spoken(asr, tag), spoken(asr, tag)
        heard = await asyncio.to_thread(blocking.finish)
        assert heard == await awaited.finish_async() and heard.text == text
        for stream in (blocking, awaited):
            assert stream.timings.path == path and stream.timings.first_pass_s is not None
            assert (stream.timings.second_pass_s is None) == (path == "grammar")
            assert stream.first_result is not None
        assert awaited.finish() == heard  # kept: a second call does not decode again


async def test_a_closed_whisper_refuses_instead_of_hanging() -> None:
    whisper = GatedWhisper()
    first = whisper.create_stream()
    first.accept(utterance(1))
    running = asyncio.create_task(first.finish_async())
    await asyncio.to_thread(whisper.decoding.wait, 2)
    queued = whisper.create_stream()
    queued.accept(utterance(2))
    waiting = asyncio.create_task(queued.finish_async())
    await until(lambda: whisper.queue_depth == 1)
    whisper.close()
    with pytest.raises(ProviderError, match="shut down"):
        await waiting
    later = whisper.create_stream()
    later.accept(utterance(3))
    with pytest.raises(ProviderError, match="shut down"):
        await later.finish_async()
    whisper.gate.set()
    assert (await running).text == "question 1"  # the decode in progress ends normally
    whisper.close()


def test_the_queue_depth_is_a_metric(whisper: GatedWhisper) -> None:
    metrics = ServerMetrics()
    asr, _ = twopass(whisper)
    metrics.watch_asr_queue(lambda: asr.queue_depth)
    assert b"xiaozhi_asr_queue_depth 0.0" in metrics.render()
