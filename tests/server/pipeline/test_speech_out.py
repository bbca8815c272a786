"""One reply's producer with fake dialogue/TTS: the events it posts (no sockets, no core)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from protocol.binary import decode_frame
from protocol.opus import OpusDecoder
from server.config import load_settings
from server.metrics import ServerMetrics
from server.pipeline.reply_cache import ReplyAudioCache
from server.pipeline.speech_out import Downlink, Reply, SentenceAudio
from server.providers.base import (
    DialogueContext,
    DialogueEvent,
    ProviderError,
    SpeechAudio,
    TextDelta,
    TtsCapabilities,
)
from server.session import events as ev
from server.session.deps import SessionDeps
from server.session.ledger import TurnLedger
from server.session.replies import Fixed, fixed_text
from tests.server.fakes import FakeDialogue, ToneTts

LOG = logging.LoggerAdapter(logging.getLogger("test"), {})


class Inbox:
    """Collects posted events; plays every sentence at once (releases its credit)."""

    def __init__(self, *, play: bool = True) -> None:
        self.events: list[ev.Event] = []
        self.play = play
        self.changed = asyncio.Event()

    def __call__(self, event: ev.Event) -> None:
        self.events.append(event)
        if self.play and isinstance(event, ev.SentenceReady):
            event.audio.release()
        self.changed.set()

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture(scope="module")
def executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(2)


def make_reply(  # type: ignore[no-untyped-def]
    executor, dialogue, tts, inbox, *, version=1, language="en", fallback=None, timeout_s=15.0,
    cache=None,
) -> Reply:  # fmt: skip
    settings = load_settings(tts={"timeout_s": timeout_s})
    metrics = ServerMetrics()
    deps = SessionDeps(settings, None, None, dialogue, tts, executor, metrics, fallback)  # type: ignore[arg-type]
    deps.reply_cache = cache
    context = DialogueContext(language=language)
    return Reply(1, deps, Downlink(24000, 60, version), context, TurnLedger(1), inbox, LOG)


async def test_sentences_carry_exact_frames_and_the_reply_ends_once(executor) -> None:  # type: ignore[no-untyped-def]
    inbox = Inbox()
    await make_reply(executor, FakeDialogue(), ToneTts(), inbox, version=3).run("what time is it")
    (ready,) = inbox.of(ev.SentenceReady)
    assert ready.text == "It is twelve o'clock." and isinstance(ready.audio, SentenceAudio)
    decoder = OpusDecoder(24000, 60)
    packets = [decode_frame(p, 3).payload for p in ready.audio.packets]
    assert all(len(decoder.decode(p)) == 1440 for p in packets)
    # lead-in 120 ms + 21 characters x 60 ms of tone, rounded up to whole frames
    assert len(packets) == 2 + -(-21 * 60 // 60)
    assert inbox.of(ev.ReplyEnded) == [ev.ReplyEnded(1, 1, inbox.of(ev.ReplyEnded)[0].now_s)]
    assert inbox.of(ev.EmotionChosen)[0].emotion == "happy"


async def test_first_sentence_is_ready_before_the_answer_is_complete(executor) -> None:  # type: ignore[no-untyped-def]
    inbox = Inbox(play=False)
    reply = make_reply(executor, FakeDialogue(delay_s=0.03), ToneTts(ms_per_char=5), inbox)
    task = asyncio.create_task(reply.run("tell me a story"))
    async with asyncio.timeout(5):
        while not inbox.of(ev.SentenceReady):
            inbox.changed.clear()
            await inbox.changed.wait()
    assert not task.done()
    # nothing is played: the producer stops two sentences ahead (its credit), not at the end
    await asyncio.sleep(0.5)
    assert len(inbox.of(ev.SentenceReady)) == 2 and not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class FailingDialogue(FakeDialogue):
    async def respond(
        self, utterance: str, context: DialogueContext
    ) -> AsyncIterator[DialogueEvent]:
        yield TextDelta("")
        raise ProviderError("the model is down", code="llm-unreachable")

    def phrases(self, tools: Sequence[Any]) -> list[str]:
        return []


@pytest.mark.parametrize("language", ["en", "zh"])
async def test_dialogue_provider_failure_is_spoken_as_an_apology(executor, language) -> None:  # type: ignore[no-untyped-def]
    inbox, tts = Inbox(), ToneTts(ms_per_char=5)
    await make_reply(executor, FailingDialogue(), tts, inbox, language=language).run("hello")
    assert tts.texts == [fixed_text(Fixed.SOMETHING_WENT_WRONG, language)]
    assert len(inbox.of(ev.SentenceReady)) == 1 and inbox.of(ev.ReplyEnded)


async def test_tts_failure_skips_the_sentence(executor) -> None:  # type: ignore[no-untyped-def]
    inbox = Inbox()
    tts = ToneTts(ms_per_char=5, fail_on="number 2 ")
    await make_reply(executor, FakeDialogue(), tts, inbox).run("tell me a story")
    spoken = [r.text for r in inbox.of(ev.SentenceReady)]
    assert len(spoken) == 7 and not any("number 2 " in s for s in spoken)
    assert [r.seq for r in inbox.of(ev.SentenceReady)] == list(range(7))
    assert inbox.of(ev.ReplyEnded)[0].sentences == 7


async def test_all_tts_failing_ends_with_no_sentence(executor) -> None:  # type: ignore[no-untyped-def]
    inbox = Inbox()
    await make_reply(executor, FakeDialogue(), ToneTts(fail_on=""), inbox).run("what time is it")
    assert not inbox.of(ev.SentenceReady) and inbox.of(ev.ReplyEnded)[0].sentences == 0


class CrashingTts(ToneTts):
    """Speaks the first sentence, then raises (an engine bug, not a ProviderError)."""

    async def synthesize(self, text: str, *, language: str | None = None):  # type: ignore[no-untyped-def]
        if len(self.texts) >= 1:
            raise RuntimeError("engine segfaulted")
        return await super().synthesize(text, language=language)


class HangingTts(ToneTts):
    async def synthesize(self, text: str, *, language: str | None = None):  # type: ignore[no-untyped-def]
        await asyncio.sleep(3600)


async def test_an_engine_bug_skips_the_sentence_without_a_fallback(executor) -> None:  # type: ignore[no-untyped-def]
    inbox = Inbox()
    await make_reply(executor, FakeDialogue(), CrashingTts(ms_per_char=5), inbox).run(
        "tell me a story"
    )
    assert len(inbox.of(ev.SentenceReady)) == 1 and inbox.of(ev.ReplyEnded)[0].sentences == 1


@pytest.mark.parametrize("broken", [CrashingTts, HangingTts])
async def test_the_fallback_voice_speaks_what_the_engine_could_not(executor, broken) -> None:  # type: ignore[no-untyped-def]
    inbox, fallback = Inbox(), ToneTts(ms_per_char=5)
    reply = make_reply(
        executor, FakeDialogue(), broken(ms_per_char=5), inbox, fallback=fallback, timeout_s=0.2
    )
    await reply.run("tell me a story")
    assert len(inbox.of(ev.SentenceReady)) == 8 and inbox.of(ev.ReplyEnded)[0].sentences == 8
    assert len(fallback.texts) >= 7


class StreamingTone(ToneTts):
    """A streaming voice: 300 ms pieces of tone, ``delay_s`` apart; optionally dies after one."""

    def __init__(self, *, pieces: int = 5, delay_s: float = 0.2, die_after: int | None = None):
        super().__init__()
        self.capabilities = TtsCapabilities(streaming=True)
        self.pieces, self.delay_s, self.die_after = pieces, delay_s, die_after

    async def synthesize_stream(self, text: str, *, language: str | None = None):  # type: ignore[no-untyped-def]
        tone = (8000 * np.sin(np.arange(4800) / 5)).astype(np.int16)  # 300 ms at 16 kHz
        for k in range(self.pieces):
            if self.die_after is not None and k == self.die_after:
                raise ProviderError("stream broke", code="tts-unreachable")
            if k:
                await asyncio.sleep(self.delay_s)
            yield SpeechAudio(tone, 16000)


async def test_a_streaming_voice_is_handed_over_at_its_first_piece(executor) -> None:  # type: ignore[no-untyped-def]
    inbox = Inbox(play=False)
    reply = make_reply(executor, FakeDialogue(), StreamingTone(), inbox)
    task = asyncio.create_task(reply.run("what time is it"))
    async with asyncio.timeout(5):
        while not inbox.of(ev.SentenceReady):
            inbox.changed.clear()
            await inbox.changed.wait()
    audio = inbox.of(ev.SentenceReady)[0].audio
    assert not audio.complete and len(audio.packets) < 10, "handed over before the sentence ended"
    frames = [p async for p in audio.frames()]  # waits for the rest
    await task
    # 2 lead-in frames + 1.5 s of tone at 24 kHz = 25 frames
    assert len(frames) == 2 + 25 and audio.complete


async def test_a_stream_that_breaks_after_its_first_piece_ends_that_sentence(executor) -> None:  # type: ignore[no-untyped-def]
    inbox, fallback = Inbox(), ToneTts(ms_per_char=5)
    voice = StreamingTone(die_after=2, delay_s=0.0)
    await make_reply(executor, FakeDialogue(), voice, inbox, fallback=fallback).run("hello")
    (ready,) = inbox.of(ev.SentenceReady)
    assert ready.audio.complete and len(ready.audio.packets) == 2 + 10  # 600 ms were spoken
    assert fallback.texts == [], "what was played is not spoken again"


async def test_a_sentence_spoken_before_comes_from_the_cache_byte_for_byte(executor) -> None:  # type: ignore[no-untyped-def]
    cache, tts = ReplyAudioCache(1 << 20), ToneTts()
    first, again = Inbox(), Inbox()
    await make_reply(executor, FakeDialogue(), tts, first, cache=cache).run("what time is it")
    await make_reply(executor, FakeDialogue(), tts, again, cache=cache).run("what time is it")
    assert tts.texts == ["It is twelve o'clock."], "the second reply was not synthesised"
    (a,), (b,) = first.of(ev.SentenceReady), again.of(ev.SentenceReady)
    assert b.audio.packets == a.audio.packets and b.audio.complete
    assert (cache.hits, cache.misses) == (1, 1)
    assert again.of(ev.ReplyEnded)[0].sentences == 1


async def test_the_cache_keys_on_language_and_downlink(executor) -> None:  # type: ignore[no-untyped-def]
    cache, tts = ReplyAudioCache(1 << 20), ToneTts()
    for language, version in (("en", 1), ("zh", 1), ("en", 3)):
        reply = make_reply(
            executor, FakeDialogue(), tts, Inbox(), cache=cache, language=language, version=version
        )
        await reply.run("what time is it")
    assert len(tts.texts) == 3 and cache.hits == 0


async def test_a_fallback_voice_sentence_is_not_cached(executor) -> None:  # type: ignore[no-untyped-def]
    cache, broken, fallback = ReplyAudioCache(1 << 20), ToneTts(fail_on=""), ToneTts()
    for _ in range(2):
        reply = make_reply(
            executor, FakeDialogue(), broken, Inbox(), fallback=fallback, cache=cache
        )
        await reply.run("what time is it")
    assert len(broken.texts) == 2 and len(fallback.texts) == 2 and len(cache) == 0


async def test_sessions_saying_the_same_sentence_at_once_share_one_synthesis(executor) -> None:  # type: ignore[no-untyped-def]
    cache, tts = ReplyAudioCache(1 << 20), ToneTts(ms_per_char=5)
    inboxes = [Inbox() for _ in range(5)]
    replies = [make_reply(executor, FakeDialogue(), tts, i, cache=cache) for i in inboxes]
    await asyncio.gather(*(r.run("what time is it") for r in replies))
    assert tts.texts == ["It is twelve o'clock."], "synthesised once for the five boards"
    first = inboxes[0].of(ev.SentenceReady)[0].audio.packets
    assert all(i.of(ev.SentenceReady)[0].audio.packets == first for i in inboxes)
    assert all(i.of(ev.ReplyEnded) for i in inboxes)


async def test_waiters_synthesise_themselves_when_the_shared_one_is_not_kept(executor) -> None:  # type: ignore[no-untyped-def]
    """The first session's sentence came from the fallback voice (never cached), or it was cut:
    the others do not get nothing, they speak it themselves."""
    cache, broken, fallback = ReplyAudioCache(1 << 20), ToneTts(fail_on=""), ToneTts()
    replies = [
        make_reply(executor, FakeDialogue(), broken, Inbox(), fallback=fallback, cache=cache)
        for _ in range(3)
    ]
    await asyncio.gather(*(r.run("what time is it") for r in replies))
    assert len(fallback.texts) == 3 and len(cache) == 0

    class SlowTone(ToneTts):
        started = 0

        async def synthesize(self, text: str, *, language: str | None = None) -> SpeechAudio:
            self.started += 1
            await asyncio.sleep(0.3)
            return await super().synthesize(text, language=language)

    slow = SlowTone()
    inboxes = [Inbox() for _ in range(2)]
    cut, waiting = (make_reply(executor, FakeDialogue(), slow, i, cache=cache) for i in inboxes)
    first = asyncio.create_task(cut.run("what time is it"))
    await asyncio.sleep(0.05)  # its synthesis is in flight
    second = asyncio.create_task(waiting.run("what time is it"))
    await asyncio.sleep(0.05)
    first.cancel()  # barge-in on the first board
    await second
    assert inboxes[1].of(ev.SentenceReady) and not inboxes[0].of(ev.SentenceReady)
    assert slow.started == 2  # the second waited for the first, then spoke it itself


def test_the_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    from server.pipeline.reply_cache import PER_ENTRY_BYTES, SentenceKey

    def key(text: str) -> SentenceKey:
        return SentenceKey(text, "en", "tone", 24000, 60, 1, 0)

    cache = ReplyAudioCache(3 * (1000 + PER_ENTRY_BYTES))
    for text in "abc":
        cache.put(key(text), [b"x" * 1000])
    assert cache.get(key("a")) is not None  # a is now the most recent
    cache.put(key("d"), [b"x" * 1000])
    assert cache.get(key("b")) is None and cache.get(key("a")) is not None
    assert len(cache) == 3 and cache.bytes <= cache.max_bytes
    cache.put(key("huge"), [b"x" * 10_000])  # bigger than the whole cache: not kept
    assert cache.get(key("huge")) is None and len(cache) == 3


class ToolDialogue:
    """Calls a (slow) tool and confirms it, telling the session the confirmation first, as the
    local dialogue does."""

    name = "tool"

    def __init__(self, confirmation: str, *, succeed: bool = True) -> None:
        self.confirmation, self.succeed = confirmation, succeed
        self.call_started = asyncio.Event()
        self.release = asyncio.Event()

    async def respond(self, text: str, context: DialogueContext) -> AsyncIterator[DialogueEvent]:
        assert context.prepare is not None
        context.prepare(self.confirmation)
        self.call_started.set()
        await self.release.wait()  # the board answers the tool call
        yield TextDelta(self.confirmation if self.succeed else "Sorry, I couldn't do that.")


class SlowTone(ToneTts):
    async def synthesize(self, text: str, *, language: str | None = None) -> SpeechAudio:
        await asyncio.sleep(0.05)
        return await super().synthesize(text, language=language)


async def test_a_prepared_confirmation_is_synthesised_while_the_tool_runs(executor) -> None:  # type: ignore[no-untyped-def]
    tts, inbox = SlowTone(), Inbox()
    cache = ReplyAudioCache(1 << 20)
    dialogue = ToolDialogue("The lamp is on.")
    reply = make_reply(executor, dialogue, tts, inbox, cache=cache)
    running = asyncio.create_task(reply.run("turn on the lamp"))
    await dialogue.call_started.wait()
    await asyncio.sleep(0.3)  # the tool call takes a while
    assert tts.texts == ["The lamp is on."]  # made during the call...
    assert not inbox.of(ev.SentenceReady)  # ...and not spoken before the answer says it
    dialogue.release.set()
    await running
    assert tts.texts == ["The lamp is on."]  # spoken from what was prepared, not made again
    (ready,) = inbox.of(ev.SentenceReady)
    assert ready.text == "The lamp is on." and ready.audio.packets


async def test_a_prepared_confirmation_of_a_failed_call_is_never_spoken(executor) -> None:  # type: ignore[no-untyped-def]
    tts, inbox = SlowTone(), Inbox()
    dialogue = ToolDialogue("The lamp is on.", succeed=False)
    reply = make_reply(executor, dialogue, tts, inbox, cache=ReplyAudioCache(1 << 20))
    running = asyncio.create_task(reply.run("turn on the lamp"))
    await dialogue.call_started.wait()
    await asyncio.sleep(0.2)
    dialogue.release.set()
    await running
    assert [r.text for r in inbox.of(ev.SentenceReady)] == ["Sorry, I couldn't do that."]
