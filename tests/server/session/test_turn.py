"""One turn's pipeline with fake dialogue/TTS and an in-memory outbox (no sockets)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from protocol.binary import decode_frame
from protocol.messages import WireModel
from protocol.opus import OpusDecoder
from server.config import AudioSettings
from server.metrics import ServerMetrics
from server.providers.base import DialogueContext, DialogueEvent, TextDelta
from server.session.ledger import TurnLedger
from server.session.turn import DIALOGUE_FAILED, Downlink, Turn, TurnDeps
from tests.server.fakes import FakeDialogue, ToneTts

LOG = logging.LoggerAdapter(logging.getLogger("test"), {})


class Outbox:
    def __init__(self) -> None:
        self.active: int | None = 1
        self.sent: list[tuple[float, str, Any]] = []

    async def send_turn_text(self, turn_id: int, message: WireModel) -> bool:
        if turn_id != self.active:
            return False
        self.sent.append((time.monotonic(), "text", message.model_dump(exclude_none=True)))
        return True

    async def send_turn_audio(self, turn_id: int, packet: bytes) -> bool:
        if turn_id != self.active:
            return False
        self.sent.append((time.monotonic(), "audio", packet))
        return True

    def kinds(self) -> list[str]:
        return [
            f"{d['type']}.{d.get('state', '')}".rstrip(".") if k == "text" else "audio"
            for _, k, d in self.sent
        ]


@pytest.fixture(scope="module")
def executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(2)


def make_turn(executor: ThreadPoolExecutor, dialogue: Any, tts: Any, outbox: Outbox, version=1):
    deps = TurnDeps(dialogue, tts, executor, AudioSettings(), ServerMetrics())
    return Turn(
        1, deps, outbox, Downlink(24000, 60, version), DialogueContext(), TurnLedger(1), LOG
    )


async def test_message_order_and_exact_frames(executor: ThreadPoolExecutor) -> None:
    outbox = Outbox()
    tts = ToneTts()
    turn = make_turn(executor, FakeDialogue(), tts, outbox, version=3)
    await turn.run("what time is it")
    kinds = outbox.kinds()
    assert kinds[:4] == ["llm", "tts.start", "tts.sentence_start", "audio"]
    assert kinds[-1] == "tts.stop" and set(kinds[3:-1]) == {"audio"}
    decoder = OpusDecoder(24000, 60)
    packets = [decode_frame(d, 3).payload for _, k, d in outbox.sent if k == "audio"]
    assert all(len(decoder.decode(p)) == 1440 for p in packets)
    # lead-in 120 ms + 21 characters x 60 ms of tone, rounded up to whole frames
    assert len(packets) == 2 + -(-21 * 60 // 60)


async def test_first_sentence_plays_before_the_answer_is_complete(
    executor: ThreadPoolExecutor,
) -> None:
    outbox = Outbox()
    dialogue = FakeDialogue(delay_s=0.03)  # the story arrives word by word over ~3 s
    turn = make_turn(executor, dialogue, ToneTts(ms_per_char=5), outbox)
    task = asyncio.create_task(turn.run("tell me a story"))
    while "audio" not in outbox.kinds():  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    sentences = outbox.kinds().count("tts.sentence_start")
    assert sentences == 1 and not task.done()
    outbox.active = None  # barge-in: nothing more may go out
    n = len(outbox.sent)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)
    assert len(outbox.sent) == n


class BrokenDialogue(FakeDialogue):
    async def respond(
        self, utterance: str, context: DialogueContext
    ) -> AsyncIterator[DialogueEvent]:
        yield TextDelta("")
        raise RuntimeError("model crashed")

    def phrases(self, tools: Sequence[Any]) -> list[str]:
        return []


async def test_dialogue_failure_is_spoken_as_an_apology(executor: ThreadPoolExecutor) -> None:
    outbox = Outbox()
    tts = ToneTts(ms_per_char=5)
    await make_turn(executor, BrokenDialogue(), tts, outbox).run("hello")
    assert tts.texts == [DIALOGUE_FAILED]
    assert outbox.kinds()[-1] == "tts.stop" and "audio" in outbox.kinds()


async def test_tts_failure_skips_the_sentence_but_the_turn_ends_cleanly(
    executor: ThreadPoolExecutor,
) -> None:
    outbox = Outbox()
    tts = ToneTts(ms_per_char=5, fail_on="number 2 ")
    await make_turn(executor, FakeDialogue(), tts, outbox).run("tell me a story")
    spoken = [
        d["text"] for _, k, d in outbox.sent if k == "text" and d.get("state") == "sentence_start"
    ]
    assert len(spoken) == 7 and not any("number 2 " in s for s in spoken)
    assert outbox.kinds()[-1] == "tts.stop"


async def test_all_tts_failing_still_gives_start_and_stop(executor: ThreadPoolExecutor) -> None:
    outbox = Outbox()
    await make_turn(executor, FakeDialogue(), ToneTts(fail_on=""), outbox).run("what time is it")
    assert outbox.kinds() == ["llm", "tts.start", "tts.stop"]
