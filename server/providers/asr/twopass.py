"""Two-pass recognition: the streaming grammar recogniser for commands, Whisper for the rest.

Registry name ``twopass``. While the user speaks, pocketsphinx decodes in grammar mode (the
dialogue's phrases, RTF ~0.05) and its partials stream as usual; the utterance's audio is kept.
At the end of the utterance:

* the grammar result is **trusted** only with positive evidence: the phone loop that competes
  with the phrases in the same search (``asr.garbage_phone_probability``, see
  :mod:`.grammar`) lost, i.e. the phrase explains the audio better than free phones, and the
  text is one of the phrases. Then it is final at once (the fast path, a few ms);
* otherwise (out of grammar, garbage, nothing) Whisper re-recognises the kept audio and its
  transcript is final, with its language and its verdict (empty for noise, ``rejected`` for
  speech it could not make out).

``asr.language: zh`` skips the first pass (it is English-only); ``auto`` keeps it (Mandarin
loses against the phone loop, measured) and lets Whisper choose en/zh. Without phrases (an LLM
dialogue) every utterance goes to Whisper. Timings of the last pass are kept on the stream
(:attr:`TwoPassStream.timings`) for the ledger and the benchmark.

The session awaits :meth:`TwoPassStream.finish_async`: the grammar pass ends on a worker thread
of the event loop's default pool (milliseconds; neither the loop, the shared executor nor
Whisper's thread), and only an untrusted result waits for Whisper's own thread, so a command
is answered at once however many questions queue for Whisper; a question Whisper has not
started within ``asr.whisper.max_queue_wait_s`` is refused (``asr-queue-timeout``, see
:mod:`.decode_queue`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

import numpy as np

from protocol.audio import Pcm
from server.config import AsrSettings
from server.providers.asr.pocketsphinx import PocketsphinxAsr
from server.providers.asr.pocketsphinx_stream import PocketsphinxStream
from server.providers.asr.whisper import WhisperAsr, spoken_language
from server.providers.base import AsrCapabilities, Transcript

logger = logging.getLogger(__name__)

MAX_KEPT_SAMPLES: Final = 30 * 16000
GARBAGE_PHONE_PROBABILITY: Final = 3e-4
"""Measured (bench/accuracy.py): 18/18 commands still matched, 0/40 near-command questions
forced onto a command; 1e-3 lost one command, 3e-3 several."""


@dataclass(slots=True)
class PassTimings:
    """Seconds spent in ``finish`` by each pass (None: the pass did not run)."""

    first_pass_s: float | None = None
    second_pass_s: float | None = None
    path: str = ""
    """``grammar`` (fast path) or ``whisper``."""


class TwoPassAsr:
    """The provider; shares one pocketsphinx pool and one Whisper model between sessions."""

    name = "twopass"
    sample_rate_hz = 16000

    def __init__(
        self,
        settings: AsrSettings,
        *,
        first: PocketsphinxAsr | None = None,
        second: WhisperAsr | None = None,
    ) -> None:
        self.language = spoken_language(settings.language)
        self.second = second or WhisperAsr(settings)
        self._owns_second = second is None
        self.first: PocketsphinxAsr | None = None
        if self.language != "zh":
            garbage = settings.garbage_phone_probability or GARBAGE_PHONE_PROBABILITY
            english = settings.model_copy(
                update={
                    "language": "en-US",
                    "mode": "grammar",
                    "garbage_phone_probability": garbage,
                }
            )
            self.first = first or PocketsphinxAsr(english)
        self.capabilities = AsrCapabilities(
            grammar=True,
            free_text=True,
            partials=self.first is not None,
            streaming=self.first is not None,
            languages=self.second.capabilities.languages,
        )

    @property
    def queue_depth(self) -> int:
        """Utterances waiting for Whisper to start on them (``xiaozhi_asr_queue_depth``)."""
        return self.second.queue_depth

    def create_stream(self, phrases: Sequence[str] | None = None) -> TwoPassStream:
        return self.create_speaker_stream(phrases, None)

    def create_speaker_stream(
        self, phrases: Sequence[str] | None, speaker: str | None
    ) -> TwoPassStream:
        """An utterance of ``speaker``: the grammar pass adapts to its channel."""
        first = (
            self.first.create_speaker_stream(phrases, speaker) if self.first and phrases else None
        )
        return TwoPassStream(
            self, first, frozenset(" ".join(p.lower().split()) for p in phrases or ())
        )

    def close(self) -> None:
        """Stop the Whisper thread of a second pass this provider loaded (a shared one, passed
        in, is its owner's to close)."""
        if self._owns_second:
            self.second.close()


class TwoPassStream:
    """One utterance; blocking calls, run from the executor (one call at a time), or
    :meth:`finish_async` awaited at the end."""

    def __init__(
        self, provider: TwoPassAsr, first: PocketsphinxStream | None, phrases: frozenset[str]
    ) -> None:
        self._provider = provider
        self._first = first
        self._phrases = phrases
        self._audio: list[Pcm] = []
        self._samples = 0
        self._final: Transcript | None = None
        self.first_result: Transcript | None = None
        """The grammar pass's own final (for logs and the benchmark)."""
        self.timings = PassTimings()

    def accept(self, pcm: Pcm) -> Transcript | None:
        if self._samples < MAX_KEPT_SAMPLES:
            self._audio.append(np.asarray(pcm, dtype=np.int16))
            self._samples += len(pcm)
        return self._first.accept(pcm) if self._first is not None else None

    def finish(self) -> Transcript:
        """Blocking; the Whisper pass waits for Whisper's thread however long."""
        if self._final is not None:
            return self._final
        if self._first is not None and (trusted := self._first_pass()) is not None:
            return trusted
        started = time.monotonic()
        return self._second_pass_done(self._provider.second.recognise(self._take()), started)

    async def finish_async(self) -> Transcript:
        """As :meth:`finish`, awaited: the grammar pass on a worker thread (ms), a trusted result
        at once; else the Whisper pass on Whisper's thread, with its bounded wait (a retryable
        ``asr-queue-timeout`` ProviderError when Whisper is too busy)."""
        if self._final is not None:
            return self._final
        if self._first is not None:
            ending = asyncio.get_running_loop().run_in_executor(None, self._first_pass)
            try:
                trusted = await asyncio.shield(ending)
            except asyncio.CancelledError:
                await asyncio.wait([ending])  # close() must not run under the decoder
                raise
            if trusted is not None:
                return trusted
        started = time.monotonic()
        heard = await self._provider.second.recognise_async(self._take())
        return self._second_pass_done(heard, started)

    def _first_pass(self) -> Transcript | None:
        """End the grammar pass; its result when trusted (then final), else None."""
        assert self._first is not None
        started = time.monotonic()
        first = self.first_result = self._first.finish()
        self.timings.first_pass_s = time.monotonic() - started
        if first.text and not first.rejected and first.text in self._phrases:
            self.timings.path = "grammar"
            self._final = Transcript(
                first.text, is_final=True, confidence=first.confidence, language="en"
            )
            self._audio = []
            return self._final
        return None

    def _take(self) -> Pcm:
        audio = np.concatenate(self._audio) if self._audio else np.zeros(0, np.int16)
        self._audio = []
        return audio

    def _second_pass_done(self, heard: Transcript, started: float) -> Transcript:
        self._final = self._canonical(heard)
        self.timings.second_pass_s = time.monotonic() - started
        self.timings.path = "whisper"
        if self.first_result is not None:
            logger.debug(
                "grammar pass %r (rejected=%s) → Whisper %r",
                self.first_result.text,
                self.first_result.rejected,
                self._final.text,
            )
        return self._final

    def _canonical(self, heard: Transcript) -> Transcript:
        """Whisper's "What time is it?" for the phrase "what time is it": the phrase itself, so
        a command reads the same whichever pass heard it."""
        if heard.rejected or not heard.text or not self._phrases:
            return heard
        key = _words(heard.text)
        for phrase in self._phrases:
            if _words(phrase) == key:
                return replace(heard, text=phrase)
        return heard

    def close(self) -> None:
        self._audio = []
        if self._first is not None:
            self._first.close()


def create(settings: AsrSettings) -> TwoPassAsr:
    return TwoPassAsr(settings)


_NOT_WORD = re.compile(r"[^\w' ]+")


def _words(text: str) -> str:
    """Lowercase words separated by one space, punctuation dropped."""
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())
