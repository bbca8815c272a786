"""Continuous transcription of one PCM stream: segments split by the VAD endpointer.

:class:`PcmTranscriber` is synchronous (run it in an executor, one call at a time). It drives
the assistant's own :class:`~server.pipeline.speech_in.SpeechIn` through its PCM entry point and
restarts an utterance after each endpoint, so a stream becomes numbered segments, each with
partial texts and one final. Times are on the stream's audio timeline (ms of audio received).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from protocol.audio import Pcm
from server.config import VadSettings
from server.pipeline.speech_in import ASR_RATE_HZ, SpeechIn
from server.providers.base import Alternative, AsrProvider, Transcript, VadProvider

PIECE_SAMPLES: Final = 960
"""PCM is fed in 60 ms pieces (as the assistant's Opus frames): an endpoint decided mid-piece
loses at most the rest of that piece, which is trailing silence."""
TAIL_PADDING_S: Final = 0.3
"""Silence fed at the end of a stream so the recogniser emits its last words (as sherpa-onnx)."""


@dataclass(frozen=True, slots=True)
class PartialText:
    """The current segment's text so far changed."""

    segment: int
    text: str
    audio_ms: float
    """Audio received when this text was produced (ms since the stream started)."""


@dataclass(frozen=True, slots=True)
class SegmentFinal:
    """A segment ended (endpoint or end of stream): its final text and what the engine knows."""

    segment: int
    text: str
    start_ms: float
    end_ms: float
    confidence: float | None = None
    alternatives: tuple[Alternative, ...] = ()
    language: str | None = None
    rejected: bool = False


Update = PartialText | SegmentFinal


@dataclass(slots=True)
class _Segment:
    index: int = 0
    start_ms: float = 0.0
    text: str = ""
    heard: bool = False


@dataclass(slots=True)
class TranscriberStats:
    audio_ms: float = 0.0
    segments: int = 0
    errors: list[str] = field(default_factory=list)


class PcmTranscriber:
    """``feed`` int16 16 kHz PCM, get updates; ``finish`` pads, flushes and ends the stream."""

    def __init__(
        self,
        vad: VadProvider,
        asr: AsrProvider,
        vad_settings: VadSettings,
        *,
        phrases: Sequence[str] = (),
        speaker: str | None = None,
    ) -> None:
        """``speaker``: who talks, for ASR engines that adapt to a speaker's channel between
        utterances (None: this stream alone, a fresh speaker)."""
        speaker = speaker or f"transcribe:{uuid.uuid4().hex}"
        self._speech = SpeechIn(vad, asr, vad_settings, speaker=speaker)
        self._speech.set_phrases(tuple(phrases) or None)
        self._speech.begin(endpointing=True)
        self._segment = _Segment()
        self._pending = np.zeros(0, dtype=np.int16)
        self.stats = TranscriberStats()
        self._finished = False

    @property
    def segment(self) -> int:
        """Index of the segment in progress (0-based)."""
        return self._segment.index

    def feed(self, pcm: Pcm, arrival_s: float) -> list[Update]:
        """Process PCM of any length; returns partials and finals in order."""
        if self._finished:
            return []
        data = np.concatenate([self._pending, np.asarray(pcm, dtype=np.int16)])
        whole = len(data) - len(data) % PIECE_SAMPLES
        self._pending = data[whole:]
        updates: list[Update] = []
        for at in range(0, whole, PIECE_SAMPLES):
            self._feed_piece(data[at : at + PIECE_SAMPLES], arrival_s, updates)
        return updates

    def finish(self, arrival_s: float) -> list[Update]:
        """End of stream: the rest, 0.3 s of silence, then the last segment's final."""
        if self._finished:
            return []
        pad = np.zeros(int(TAIL_PADDING_S * ASR_RATE_HZ), dtype=np.int16)
        updates = self.feed(np.concatenate([self._pending, pad]), arrival_s)
        self._pending = np.zeros(0, dtype=np.int16)
        result = self._speech.finish()
        self._finished = True
        self.stats.errors.extend(result.errors)
        text = result.final_text or ""
        if text or self._segment.heard or self._segment.text:
            updates.append(self._final(text, result.transcript))
        return updates

    def close(self) -> None:
        """Return pooled decoders; safe to call twice."""
        self._finished = True
        self._speech.close()

    def _feed_piece(self, piece: Pcm, arrival_s: float, updates: list[Update]) -> None:
        self.stats.audio_ms += len(piece) * 1000 / ASR_RATE_HZ
        result = self._speech.feed_pcm(piece, arrival_s)
        self.stats.errors.extend(result.errors)
        if result.speech_started:
            self._segment.heard = True
        if result.partial_text is not None and result.final_text is None:
            self._segment.text = result.partial_text
            updates.append(
                PartialText(self._segment.index, result.partial_text, self.stats.audio_ms)
            )
        if result.final_text is not None:
            if result.final_text or result.heard_speech:
                updates.append(self._final(result.final_text, result.transcript))
            else:  # the endpointer ended a silence-only stretch: same segment continues
                self._segment.start_ms = self.stats.audio_ms
            self._speech.begin(endpointing=True)

    def _final(self, text: str, t: Transcript | None) -> SegmentFinal:
        final = SegmentFinal(
            self._segment.index,
            text,
            self._segment.start_ms,
            self.stats.audio_ms,
            confidence=t.confidence if t else None,
            alternatives=t.alternatives if t else (),
            language=t.language if t else None,
            rejected=t.rejected if t else False,
        )
        self.stats.segments += 1
        self._segment = _Segment(index=self._segment.index + 1, start_ms=self.stats.audio_ms)
        return final
