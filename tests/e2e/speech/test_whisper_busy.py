"""Admission under load, with the real default stack (two-pass ASR with Whisper base, local
dialogue, Piper): while two boards' questions keep Whisper busy (one decoding, one waiting), a
command spoken on a third board is still heard and answered, and both questions are answered
too. Whisper decodes on its own thread, so the shared executor keeps every other session's
VAD and grammar decoding going (server/providers/asr/decode_queue.py). A question Whisper cannot
start within ``asr.whisper.max_queue_wait_s`` is answered with "I'm busy right
now", never with silence."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from bench.speech_corpus import speak
from protocol.audio import Pcm
from protocol.enums import ListenMode
from server.app import Server, build_providers
from server.providers.asr.twopass import TwoPassAsr
from server.session.replies import Fixed, fixed_text
from tests.e2e.conftest import device, e2e_settings, is_msg
from tests.e2e.firmware_client import FirmwareClient, last_voiced_sample, synthesize
from tests.timing import scaled

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
logger = logging.getLogger(__name__)

QUESTIONS = (
    ("what is the capital of france and how many people live there", "france"),
    ("who wrote the novel war and peace and when was it first published", "peace"),
)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    settings = e2e_settings(tmp_path_factory.mktemp("whisper-busy"), default_engines=True)
    assert settings.asr.provider == "twopass"
    srv = Server(settings, providers=await asyncio.to_thread(build_providers, settings))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def texts(board: FirmwareClient, start: int, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in board.events[start:] if e.kind == "text" and e.data.get("type") == kind]


def arrival(board: FirmwareClient, start: int, kind: str, state: str | None = None) -> float:
    return next(e.t for e in board.events[start:] if is_msg(kind, state)(e))


def padded(pcm: Pcm, samples: int) -> Pcm:
    return np.concatenate((pcm, np.zeros(samples - len(pcm), np.int16)))


async def test_a_command_is_answered_while_questions_keep_whisper_busy(server: Server) -> None:
    assert server.providers is not None and isinstance(server.providers.asr, TwoPassAsr)
    whisper = server.providers.asr.second.queue
    (clip,) = await asyncio.to_thread(speak, ["turn on the kitchen lamp"], "piper", "joe")
    command = clip.pcm[: last_voiced_sample(clip.pcm) + 1]  # no trailing silence: it cannot end
    asked = [await asyncio.to_thread(synthesize, text) for text, _ in QUESTIONS]
    longest = max(len(pcm) for pcm in asked)
    asked = [padded(pcm, longest) for pcm in asked]  # both questions end together

    async with device(server) as lamp, device(server) as first, device(server) as second:
        boards = (lamp, first, second)
        starts = [len(b.events) for b in boards]
        for board in boards:
            await board.listen_start(ListenMode.AUTO)

        def answered(board: FirmwareClient, start: int) -> bool:
            return any(is_msg("tts", "stop")(e) for e in board.events[start:])

        async def ask(board: FirmwareClient, start: int, pcm: Pcm) -> None:
            await board.speak(pcm)  # its 0.8 s tail of silence ends the utterance
            await board.stream_silence(lambda: answered(board, start), max_s=scaled(30))

        # the command is said, then the board sends nothing until Whisper is busy (no silence
        # heard, so the utterance cannot end); then its mic streams silence again
        await lamp.speak(command, tail_s=0.0)
        questions = [
            asyncio.create_task(ask(board, start, pcm))
            for board, start, pcm in zip(boards[1:], starts[1:], asked, strict=True)
        ]
        deadline = time.monotonic() + scaled(20)
        while not (whisper.running == 1 and whisper.waiting >= 1):  # one decoding, one waiting
            assert time.monotonic() < deadline, "the questions never queued for Whisper"
            await asyncio.sleep(0.01)
        quiet_at = time.monotonic()
        await lamp.stream_silence(lambda: answered(lamp, starts[0]), max_s=scaled(30))
        await asyncio.wait_for(asyncio.gather(*questions), scaled(40))

    heard = texts(lamp, starts[0], "stt")
    assert heard and heard[0]["text"] == "turn on the kitchen lamp", heard
    assert any(t.get("state") == "start" for t in texts(lamp, starts[0], "tts"))
    calls = [m["payload"] for m in texts(lamp, starts[0], "mcp")]
    assert [c["params"]["name"] for c in calls if c.get("method") == "tools/call"] == [
        "self.kitchen_lamp.turn_on"
    ]
    for board, start, (_, word) in zip(boards[1:], starts[1:], QUESTIONS, strict=True):
        said = texts(board, start, "stt")
        assert said and word in said[0]["text"].lower(), said  # Whisper heard it: no silence
        assert any(t.get("state") == "start" for t in texts(board, start, "tts"))
    command_at = arrival(lamp, starts[0], "stt")
    question_at = sorted(arrival(b, s, "stt") for b, s in zip(boards[1:], starts[1:], strict=True))
    logger.info(
        "command stt %.0f ms after the board went quiet; question stts at %+.0f / %+.0f ms",
        (command_at - quiet_at) * 1000,
        (question_at[0] - quiet_at) * 1000,
        (question_at[1] - quiet_at) * 1000,
    )


async def test_a_question_whisper_cannot_start_in_time_is_answered_not_left_silent(
    server: Server,
) -> None:
    """With a tiny ``asr.whisper.max_queue_wait_s`` the second of two questions ending together
    is refused: that board hears "I'm busy right now, ask me again", the other its answer."""
    assert server.providers is not None and isinstance(server.providers.asr, TwoPassAsr)
    whisper = server.providers.asr.second.queue
    asked = [await asyncio.to_thread(synthesize, text) for text, _ in QUESTIONS]
    longest = max(len(pcm) for pcm in asked)
    asked = [padded(pcm, longest) for pcm in asked]
    refused_before = whisper.refused
    whisper.max_wait_s = 0.05  # shorter than any decode: the one waiting is refused
    try:
        async with device(server) as first, device(server) as second:
            boards = (first, second)
            starts = [len(b.events) for b in boards]
            for board in boards:
                await board.listen_start(ListenMode.AUTO)

            async def ask(board: FirmwareClient, start: int, pcm: Pcm) -> None:
                await board.speak(pcm)
                stopped = lambda: any(is_msg("tts", "stop")(e) for e in board.events[start:])  # noqa: E731
                await board.stream_silence(stopped, max_s=scaled(30))

            await asyncio.wait_for(
                asyncio.gather(
                    *(ask(b, s, p) for b, s, p in zip(boards, starts, asked, strict=True))
                ),
                scaled(40),
            )
    finally:
        whisper.max_wait_s = server.settings.asr.whisper.max_queue_wait_s
    sentences = [
        [t["text"] for t in texts(b, s, "tts") if t.get("state") == "sentence_start"]
        for b, s in zip(boards, starts, strict=True)
    ]
    heard = [texts(b, s, "stt") for b, s in zip(boards, starts, strict=True)]
    busy = fixed_text(Fixed.BUSY, "en")
    refused = [i for i, said in enumerate(sentences) if " ".join(said) == busy]
    assert len(refused) == 1, (sentences, heard)  # exactly one waited, and it was told so
    answered = 1 - refused[0]
    assert not heard[refused[0]]  # nothing was heard, nothing is acted on
    word = QUESTIONS[answered][1]
    assert heard[answered] and word in heard[answered][0]["text"].lower(), heard
    assert sentences[answered] and " ".join(sentences[answered]) != busy
    assert whisper.refused == refused_before + 1 and whisper.waiting == 0
    assert b'xiaozhi_errors_total{code="asr-queue-timeout"} 1.0' in server.metrics.render()
