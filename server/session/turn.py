"""One turn's answer: dialogue → sentences → TTS → Opus → paced frames, as one task group.

Three stages run concurrently and hand over through small bounded queues, so the first sentence
is synthesised and on the wire before the rest of the answer exists, and sentence N+1 is
synthesised while sentence N plays:

``think`` (dialogue events → ``llm`` emotion, text → sentences) → ``synthesize`` (TTS, then
resample + Opus-encode in the executor) → ``play`` (``tts start``, ``sentence_start``, frames
paced in real time, ``tts stop``).

Every send goes through :class:`Outbox`, which drops it unless this turn is still the session's
active turn at that very moment: after a barge-in not one frame of the cancelled turn goes out.
Cancelling the task cancels the whole group; the session then sends ``tts stop`` itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from protocol.audio import resample, samples_per_frame, split_frames
from protocol.binary import encode_frame
from protocol.enums import Emotion
from protocol.messages import Llm, TtsSentenceStart, TtsStart, TtsStop, WireModel
from protocol.opus import OpusEncoder
from server.config import AudioSettings
from server.metrics import ServerMetrics
from server.providers.base import (
    DialogueContext,
    DialogueProvider,
    EmotionChosen,
    ProviderError,
    TextDelta,
    TtsProvider,
)
from server.session.ledger import TurnLedger
from server.session.pacer import Pacer
from server.session.sentences import SentenceSplitter, make_splitter

NO_ANSWER = "Sorry, I have no answer to that."
DIALOGUE_FAILED = "Sorry, something went wrong. Please try again."
_EMOTIONS = frozenset(e.value for e in Emotion)


class Outbox(Protocol):
    """The session's sending side, with the turn-id check done right before each write."""

    async def send_turn_text(self, turn_id: int, message: WireModel) -> bool: ...

    async def send_turn_audio(self, turn_id: int, packet: bytes) -> bool: ...


@dataclass(frozen=True)
class Downlink:
    """Negotiated downlink: Opus at ``sample_rate_hz``/``frame_duration_ms``, binary ``version``."""

    sample_rate_hz: int
    frame_duration_ms: int
    version: int


@dataclass
class TurnDeps:
    dialogue: DialogueProvider
    tts: TtsProvider
    executor: Executor
    audio: AudioSettings
    metrics: ServerMetrics
    splitter_factory: Callable[[], SentenceSplitter] = make_splitter
    language: str | None = None


@dataclass(frozen=True, slots=True)
class _Speech:
    text: str
    packets: list[bytes]


class Turn:
    """Answers one utterance; ``await run()`` ends after ``tts stop`` (or when cancelled)."""

    def __init__(
        self,
        turn_id: int,
        deps: TurnDeps,
        outbox: Outbox,
        downlink: Downlink,
        context: DialogueContext,
        ledger: TurnLedger,
        log: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.turn_id = turn_id
        self._deps = deps
        self._outbox = outbox
        self._down = downlink
        self._context = context
        self.ledger = ledger
        self._log = log
        self.tts_started = False
        self.tts_started_at: float | None = None
        """Monotonic time ``tts start`` was sent (the realtime echo gate starts there)."""
        self._emotion_sent = False
        self._encoder = OpusEncoder(downlink.sample_rate_hz, downlink.frame_duration_ms)
        self.frames_sent = 0

    async def run(self, text: str, *, fixed: bool = False) -> None:
        sentences: asyncio.Queue[str | None] = asyncio.Queue(maxsize=32)
        speech: asyncio.Queue[_Speech | None] = asyncio.Queue(maxsize=1)
        async with asyncio.TaskGroup() as group:
            group.create_task(self._think(text, fixed, sentences))
            group.create_task(self._synthesize(sentences, speech))
            group.create_task(self._play(speech))

    # ------------------------------------------------------------------ stages

    async def _send_emotion(self, emotion: str) -> None:
        if emotion not in _EMOTIONS:
            emotion = Emotion.NEUTRAL
        self._emotion_sent = True
        await self._outbox.send_turn_text(self.turn_id, Llm(emotion=emotion))

    async def _think(self, text: str, fixed: bool, out: asyncio.Queue[str | None]) -> None:
        splitter = self._deps.splitter_factory()
        count = 0
        failed = False
        if fixed:
            self.ledger.mark("dialogue_first_token", time.monotonic())
            await self._send_emotion(Emotion.CONFUSED)
            for sentence in [*splitter.feed(text), *splitter.flush()]:
                await out.put(sentence)
                count += 1
        else:
            try:
                async for event in self._deps.dialogue.respond(text, self._context):
                    if isinstance(event, EmotionChosen):
                        await self._send_emotion(event.emotion)
                    elif isinstance(event, TextDelta) and event.text:
                        self.ledger.mark("dialogue_first_token", time.monotonic())
                        if not self._emotion_sent:
                            await self._send_emotion(Emotion.NEUTRAL)
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
            except Exception:
                self._log.exception("dialogue provider raised")
                self._deps.metrics.error("dialogue-error")
                failed = True
        if count == 0:
            if not self._emotion_sent:
                await self._send_emotion(Emotion.CONFUSED)
            await out.put(DIALOGUE_FAILED if failed else NO_ANSWER)
        await out.put(None)  # not in ``finally``: a cancelled consumer would never take it

    async def _synthesize(
        self, sentences: asyncio.Queue[str | None], out: asyncio.Queue[_Speech | None]
    ) -> None:
        loop = asyncio.get_running_loop()
        first = True
        while (sentence := await sentences.get()) is not None:
            try:
                audio = await self._deps.tts.synthesize(sentence, language=self._deps.language)
            except ProviderError as exc:
                self._log.warning("TTS failed for %r (%s): %s", sentence, exc.code, exc)
                self._deps.metrics.error(exc.code)
                continue
            lead_in = self._deps.audio.lead_in_silence_ms if first else 0
            packets = await loop.run_in_executor(
                self._deps.executor, self._encode, audio.pcm, audio.sample_rate_hz, lead_in
            )
            if first:
                self.ledger.mark("first_sentence_synthesised", time.monotonic())
                first = False
            await out.put(_Speech(sentence, packets))
        await out.put(None)

    def _encode(self, pcm: np.ndarray, rate_hz: int, lead_in_ms: int) -> list[bytes]:
        """Resample to the downlink rate and cut into exactly-frame-sized Opus packets."""
        down = self._down
        samples = samples_per_frame(down.sample_rate_hz, down.frame_duration_ms)
        pcm = resample(np.asarray(pcm, dtype=np.int16), rate_hz, down.sample_rate_hz)
        if lead_in_ms > 0:
            n_lead = -(-lead_in_ms * down.sample_rate_hz // 1000 // samples) * samples
            pcm = np.concatenate((np.zeros(n_lead, dtype=np.int16), pcm))
        return [
            encode_frame(self._encoder.encode(frame), down.version)
            for frame in split_frames(pcm, samples)
        ]

    async def _play(self, speech: asyncio.Queue[_Speech | None]) -> None:
        audio = self._deps.audio
        pacer = Pacer(
            self._down.frame_duration_ms / 1000,
            min(audio.burst_frames, audio.max_ahead_frames - 1),
        )
        send_text, send_audio = self._outbox.send_turn_text, self._outbox.send_turn_audio
        while (item := await speech.get()) is not None:
            if not self.tts_started:
                self.tts_started = True
                self.tts_started_at = time.monotonic()
                await send_text(self.turn_id, TtsStart())
            await send_text(self.turn_id, TtsSentenceStart(text=item.text))
            for packet in item.packets:
                await pacer.wait()
                if not await send_audio(self.turn_id, packet):
                    return
                pacer.sent()
                self.frames_sent += 1
                now = time.monotonic()
                self.ledger.mark("first_frame_sent", now)
                self.ledger.marks["last_frame_sent"] = now
        if not self.tts_started:  # nothing could be spoken: still give the board a defined end
            self.tts_started = True
            await send_text(self.turn_id, TtsStart())
        if pacer.rebased:
            self._log.info(
                "downlink underran %d time(s) (synthesis slower than playback)", pacer.rebased
            )
        await send_text(self.turn_id, TtsStop())
