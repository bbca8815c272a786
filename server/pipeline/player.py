"""The session's downlink player: sends each reply sentence's ``sentence_start`` and Opus frames
paced in real time, and tells the core when the board has *played* a sentence to its end.

Frames go out on the :class:`~.pacer.Pacer`'s schedule (a small burst, then one per frame
duration). The pacer's play clock says when the board will have played everything sent; the
player posts :class:`~server.session.events.SentencePlayed` at that time plus
``margin_s`` — so ``tts stop`` (which a client may take as "drop whatever is still queued")
never cuts off the end of a reply. Right before every write the player asks the core whether the
sentence's turn is still the active one: after a barge-in not one frame of the old turn goes out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from protocol.messages import TtsSentenceStart, WireModel
from server.pipeline.pacer import Pacer
from server.pipeline.speech_out import SentenceAudio
from server.session import events as ev

SendText = Callable[[WireModel], Awaitable[None]]
SendAudio = Callable[[bytes], Awaitable[None]]
IsCurrent = Callable[[int], bool]


class Player:
    """One per session; :meth:`play` queues a sentence, :meth:`run` plays them in order."""

    def __init__(
        self,
        send_text: SendText,
        send_audio: SendAudio,
        is_current: IsCurrent,
        post: ev.Post,
        log: logging.LoggerAdapter[logging.Logger],
        *,
        frame_s: float,
        burst_frames: int,
        margin_s: float = 0.06,
        max_queued: int = 8,
    ) -> None:
        self._send_text, self._send_audio = send_text, send_audio
        self._is_current, self._post, self._log = is_current, post, log
        self._frame_s, self._burst, self._margin_s = frame_s, burst_frames, margin_s
        self._queue: asyncio.Queue[ev.PlaySentence] = asyncio.Queue(maxsize=max_queued)
        self._pacer: Pacer | None = None
        self._pacer_turn = -1
        self._timers: set[asyncio.TimerHandle] = set()
        self.frames_sent: dict[int, int] = {}
        """Frames written per turn id (for the ledger line)."""

    def play(self, item: ev.PlaySentence) -> None:
        """Queue a sentence (the producer's credit keeps this queue short)."""
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:  # cannot happen while credits bound the producers
            self._log.error("player queue full; sentence %r dropped", item.text)
            self._audio(item).release()

    @staticmethod
    def _audio(item: ev.PlaySentence) -> SentenceAudio:
        audio = item.audio
        assert isinstance(audio, SentenceAudio)
        return audio

    async def run(self) -> None:
        try:
            while True:
                item = await self._queue.get()
                audio = self._audio(item)
                try:
                    if self._is_current(item.turn_id):
                        await self._play(item, audio)
                finally:
                    audio.release()
        finally:
            for handle in self._timers:
                handle.cancel()

    async def _play(self, item: ev.PlaySentence, audio: SentenceAudio) -> None:
        if item.turn_id != self._pacer_turn or self._pacer is None:
            self._report_underruns()
            self._pacer = Pacer(self._frame_s, self._burst)
            self._pacer_turn = item.turn_id
        pacer = self._pacer
        await self._send_text(TtsSentenceStart(text=item.text))
        sent = self.frames_sent.get(item.turn_id, 0)
        async for packet in audio.frames():
            await pacer.wait()
            if not self._is_current(item.turn_id):
                return
            await self._send_audio(packet)
            pacer.sent()
            sent += 1
            now = time.monotonic()
            audio.ledger.mark("first_frame_sent", now)
            audio.ledger.marks["last_frame_sent"] = now
        self.frames_sent[item.turn_id] = sent
        self._after_play_out(item, pacer.played_out_at() + self._margin_s)

    def _after_play_out(self, item: ev.PlaySentence, at_s: float) -> None:
        loop = asyncio.get_running_loop()
        delay = max(0.0, at_s - time.monotonic())

        def fire() -> None:
            self._timers.discard(handle)
            self._post(ev.SentencePlayed(item.turn_id, item.seq, time.monotonic()))

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    def _report_underruns(self) -> None:
        if self._pacer is not None and self._pacer.rebased:
            self._log.info(
                "downlink underran %d time(s) (synthesis slower than playback)",
                self._pacer.rebased,
            )

    def forget(self, turn_id: int) -> int:
        """Frames sent for ``turn_id`` (and drop its count)."""
        if turn_id == self._pacer_turn:
            self._report_underruns()
            self._pacer, self._pacer_turn = None, -1
        return self.frames_sent.pop(turn_id, 0)
