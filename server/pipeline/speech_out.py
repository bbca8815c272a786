"""Speech out, the producing half of one reply: dialogue → sentences → TTS → Opus packets.

Two stages run concurrently in one task group and hand over through a small bounded queue, so
the first sentence is synthesised before the rest of the answer exists and sentence N+1 is
synthesised while sentence N plays:

``think`` (dialogue events → emotion, text → sentences) → ``synthesise`` (TTS, then resample +
Opus-encode in the executor) → :class:`~server.session.events.SentenceReady` into the session's
inbox. The session core decides what is sent (``tts start`` first) and hands the sentence to the
:class:`~.player.Player`; :attr:`SentenceAudio.credit` keeps the producer at most
:data:`SENTENCES_AHEAD` sentences ahead of playback.

The producer never writes to the socket. It ends with :class:`ReplyEnded`; an exception escapes
to the shell, which posts :class:`ReplyFailed` (the core then ends the turn cleanly).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Final

from protocol.enums import Emotion
from protocol.opus import OpusEncoder
from server.errors import ErrorCode, ProviderError
from server.pipeline.framing import SentenceFramer
from server.pipeline.reply_cache import ReplyAudioCache, SentenceKey
from server.providers.base import DialogueContext, SpeechAudio, TextDelta
from server.providers.base import EmotionChosen as DialogueEmotion
from server.providers.tts.pieces import synthesize_pieces
from server.session import events as ev
from server.session.deps import SessionDeps
from server.session.ledger import TurnLedger
from server.session.replies import Fixed, fixed_text
from server.text import SentenceSplitter

SENTENCES_AHEAD: Final = 2
"""Sentences synthesised ahead of the one playing."""
_EMOTIONS = frozenset(e.value for e in Emotion)


@dataclass(frozen=True)
class Downlink:
    """Negotiated downlink: Opus at ``sample_rate_hz``/``frame_duration_ms``, binary ``version``."""

    sample_rate_hz: int
    frame_duration_ms: int
    version: int


@dataclass
class SentenceAudio:
    """One sentence's framed Opus packets, growing while a streaming voice still speaks, with the
    producer's credit and the turn's ledger."""

    packets: list[bytes]
    credit: asyncio.Semaphore
    ledger: TurnLedger
    complete: bool = True
    """No more packets will be added."""
    released: bool = False
    _grown: asyncio.Event = field(default_factory=asyncio.Event)

    def extend(self, packets: list[bytes]) -> None:
        self.packets.extend(packets)
        self._grown.set()

    def finish(self) -> None:
        self.complete = True
        self._grown.set()

    async def frames(self) -> AsyncIterator[bytes]:
        """Every packet in order, waiting for the ones still being synthesised."""
        i = 0
        while True:
            while i < len(self.packets):
                yield self.packets[i]
                i += 1
            if self.complete:
                return
            self._grown.clear()
            if i == len(self.packets) and not self.complete:
                await self._grown.wait()

    def release(self) -> None:
        """Give the producer room for one more sentence (once)."""
        if not self.released:
            self.released = True
            self.credit.release()


async def _each_within(
    pieces: AsyncIterator[SpeechAudio], timeout_s: float
) -> AsyncIterator[SpeechAudio]:
    """``pieces``, raising TimeoutError when the next one takes longer than ``timeout_s``."""
    try:
        while True:
            try:
                async with asyncio.timeout(timeout_s):
                    piece = await anext(pieces)
            except StopAsyncIteration:
                return
            yield piece
    finally:
        closer = getattr(pieces, "aclose", None)
        if closer is not None:
            await closer()


class Reply:
    """Produces one turn's answer; ``await run(text, fixed=…)`` returns when all of it is ready."""

    def __init__(
        self,
        turn_id: int,
        deps: SessionDeps,
        downlink: Downlink,
        context: DialogueContext,
        ledger: TurnLedger,
        post: ev.Post,
        log: logging.LoggerAdapter[logging.Logger],
        *,
        first_seq: int = 0,
    ) -> None:
        """``first_seq``: number of this reply's first sentence (> 0 when it goes on a turn that
        already spoke: no lead-in silence then)."""
        self.turn_id = turn_id
        self._first_seq = first_seq
        self._deps = deps
        self._down = downlink
        self._context = dataclasses.replace(context, prepare=self.prepare)
        self._preparing: set[asyncio.Task[None]] = set()
        """Sentences synthesised ahead into the reply cache (:meth:`prepare`)."""
        self.ledger = ledger
        self._post = post
        self._log = log
        self._emotion_sent = False
        self._encoder = self._new_encoder()
        self._credit = asyncio.Semaphore(SENTENCES_AHEAD)

    async def run(self, text: str, *, fixed: bool = False) -> None:
        sentences: asyncio.Queue[str | None] = asyncio.Queue(maxsize=32)
        async with asyncio.TaskGroup() as group:
            group.create_task(self._think(text, fixed, sentences))
            group.create_task(self._synthesise(sentences))

    def prepare(self, sentence: str) -> None:
        """Synthesise ``sentence`` as this reply's first one into the reply cache, in the
        background, unless it is cached or being synthesised: the dialogue calls this before a
        tool call whose confirmation it is, so the audio is ready when the call returns (also
        in a speculative reply, whose tool call waits for the endpoint). Never plays it."""
        cache = self._deps.reply_cache
        key = self._cache_key(sentence, self._first_seq)
        if cache is None or key in cache or cache.in_flight(key) is not None:
            return
        cache.start(key)
        task = asyncio.create_task(self._prepare(sentence, key, cache), name="prepare")
        self._preparing.add(task)
        task.add_done_callback(self._preparing.discard)

    async def _prepare(self, sentence: str, key: SentenceKey, cache: ReplyAudioCache) -> None:
        framer = self._framer(self._first_seq, self._new_encoder())  # the reply's is in use
        packets: list[bytes] = []
        try:
            pieces = synthesize_pieces(self._deps.tts, sentence, language=self._context.language)
            async for piece in _each_within(pieces, self._deps.settings.tts.timeout_s):
                packets += await self._run(framer.feed, piece.pcm, piece.sample_rate_hz)
            packets += await self._run(framer.flush)
            cache.put(key, packets)
            cache.settle(key, tuple(packets))
        except Exception as exc:  # the reply itself synthesises (and reports) the sentence
            self._log.info("preparing %r failed: %r", sentence, exc)
        finally:
            cache.settle(key, None)

    # ------------------------------------------------------------------ stages

    def _emotion(self, emotion: str) -> None:
        self._emotion_sent = True
        chosen = emotion if emotion in _EMOTIONS else Emotion.NEUTRAL
        self._post(ev.EmotionChosen(self.turn_id, chosen, time.monotonic()))

    async def _think(self, text: str, fixed: bool, out: asyncio.Queue[str | None]) -> None:
        splitter = SentenceSplitter()
        count = 0
        failed = False
        if fixed:
            self.ledger.mark("dialogue_first_token", time.monotonic())
            self._emotion(Emotion.CONFUSED)
            for sentence in [*splitter.feed(text), *splitter.flush()]:
                await out.put(sentence)
                count += 1
        else:
            try:
                async for event in self._deps.dialogue.respond(text, self._context):
                    if isinstance(event, DialogueEmotion):
                        self._emotion(event.emotion)
                    elif isinstance(event, TextDelta) and event.text:
                        self.ledger.mark("dialogue_first_token", time.monotonic())
                        if not self._emotion_sent:
                            self._emotion(Emotion.NEUTRAL)
                        for sentence in splitter.feed(event.text):
                            await out.put(sentence)
                            count += 1
                for sentence in splitter.flush():
                    await out.put(sentence)
                    count += 1
            except ProviderError as exc:
                self._log.warning("dialogue failed (%s): %s", exc.code, exc)
                self._deps.metrics.error(exc.code)
                failed = True
        if count == 0:
            if not self._emotion_sent:
                self._emotion(Emotion.CONFUSED)
            which = Fixed.SOMETHING_WENT_WRONG if failed else Fixed.NO_ANSWER
            await out.put(fixed_text(which, self._context.language))
        await out.put(None)  # not in ``finally``: a cancelled consumer would never take it

    async def _synthesise(self, sentences: asyncio.Queue[str | None]) -> None:
        seq = self._first_seq
        while (sentence := await sentences.get()) is not None:
            if await self._speak(sentence, seq):
                seq += 1
        if seq == self._first_seq:
            self._deps.metrics.error(ErrorCode.TTS_FAILED)
        self._post(ev.ReplyEnded(self.turn_id, seq - self._first_seq, time.monotonic()))

    async def _speak(self, sentence: str, seq: int) -> bool:
        """Stream sentence ``seq`` to the player as its audio comes; False when no voice could.

        The TTS speaks it, else the fallback voice. A hang counts as a failure after
        ``tts.timeout_s`` without a piece; any exception does, not only a :class:`ProviderError`
        (an engine bug must not silence the reply). A voice failing after its first piece ends
        the sentence where it is (what was played is not repeated)."""
        key, cache = self._cache_key(sentence, seq), self._deps.reply_cache
        if cache is None:
            return await self._synthesise_sentence(sentence, seq, key, None)
        cached = cache.get(key)
        if cached is None and (flying := cache.in_flight(key)) is not None:
            cached = await asyncio.shield(flying)  # another session is synthesising it now
        self._deps.metrics.tts_cache(hit=cached is not None)
        if cached is not None:
            (await self._hand_over(None, list(cached), seq, sentence)).finish()
            return True
        cache.start(key)
        try:
            return await self._synthesise_sentence(sentence, seq, key, cache)
        finally:
            cache.settle(key, None)  # not kept (or already settled): waiters synthesise

    async def _synthesise_sentence(
        self, sentence: str, seq: int, key: SentenceKey, cache: ReplyAudioCache | None
    ) -> bool:
        """:meth:`_speak` without the cache lookup: the TTS, else the fallback voice."""
        engines = [self._deps.tts]
        if self._deps.fallback_tts is not None:
            engines.append(self._deps.fallback_tts)
        timeout_s = self._deps.settings.tts.timeout_s
        for engine in engines:
            speech: SentenceAudio | None = None
            code: str
            framer = self._framer(seq)
            try:
                pieces = synthesize_pieces(engine, sentence, language=self._context.language)
                async for piece in _each_within(pieces, timeout_s):
                    packets = await self._run(framer.feed, piece.pcm, piece.sample_rate_hz)
                    speech = await self._hand_over(speech, packets, seq, sentence)
                speech = await self._hand_over(speech, await self._run(framer.flush), seq, sentence)
                speech.finish()
                if cache is not None and engine is self._deps.tts:
                    cache.put(key, speech.packets)
                    cache.settle(key, tuple(speech.packets))
                return True
            except TimeoutError:
                code = ErrorCode.TTS_TIMEOUT
                self._log.warning("TTS %s silent %.0f s on %r", engine.name, timeout_s, sentence)
            except ProviderError as exc:
                code = exc.code
                self._log.warning("TTS %s failed for %r (%s): %s", engine.name, sentence, code, exc)
            except Exception:
                code = ErrorCode.TTS_FAILED
                self._log.exception("TTS %s raised for %r", engine.name, sentence)
            self._deps.metrics.error(code)
            if speech is not None and speech.packets:  # already playing: end it where it is
                speech.extend(await self._run(framer.flush))
                speech.finish()
                return True
        return False

    async def _hand_over(
        self, speech: SentenceAudio | None, packets: list[bytes], seq: int, text: str
    ) -> SentenceAudio:
        """Start the sentence with its first packets (posted to the core), or extend it."""
        if speech is not None and speech.packets:
            speech.extend(packets)
            return speech
        if not packets:  # nothing whole yet: keep waiting for more audio
            return speech or SentenceAudio([], self._credit, self.ledger, complete=False)
        if seq == 0:
            self.ledger.mark("first_sentence_synthesised", time.monotonic())
        await self._credit.acquire()
        speech = SentenceAudio(packets, self._credit, self.ledger, complete=False)
        self._post(ev.SentenceReady(self.turn_id, seq, text, speech, time.monotonic()))
        return speech

    def _lead_in_ms(self, seq: int) -> int:
        return self._deps.settings.audio.lead_in_silence_ms if seq == 0 else 0

    def _cache_key(self, sentence: str, seq: int) -> SentenceKey:
        down = self._down
        return SentenceKey(
            text=sentence,
            language=self._context.language or "",
            voice=self._deps.tts.name,
            rate_hz=down.sample_rate_hz,
            frame_duration_ms=down.frame_duration_ms,
            version=down.version,
            lead_in_ms=self._lead_in_ms(seq),
        )

    def _new_encoder(self) -> OpusEncoder:
        down = self._down
        complexity = self._deps.settings.audio.opus_complexity
        return OpusEncoder(down.sample_rate_hz, down.frame_duration_ms, complexity=complexity)

    def _framer(self, seq: int, encoder: OpusEncoder | None = None) -> SentenceFramer:
        """Frames sentence ``seq``; ``encoder``: another than the reply's own (one in use)."""
        down = self._down
        return SentenceFramer(
            encoder or self._encoder,
            rate_hz=down.sample_rate_hz,
            frame_duration_ms=down.frame_duration_ms,
            version=down.version,
            lead_in_ms=self._lead_in_ms(seq),
        )

    async def _run(self, call: Callable[..., list[bytes]], *args: object) -> list[bytes]:
        """``call(*args)`` in the shared executor (resampling and Opus encoding are CPU work)."""
        return await asyncio.get_running_loop().run_in_executor(self._deps.executor, call, *args)
