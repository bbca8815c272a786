"""Downlink framing of one reply: TTS audio pieces in, exactly-frame-sized Opus packets out.

Pieces may come at any length and at the engine's native rate (a streaming voice yields its audio
as it arrives; a mixed-language sentence may change voice and rate): they are resampled with one
continuous soxr stream per voice run (no clicks at piece boundaries), cut into frames of the
downlink's duration carrying the remainder over, Opus encoded with the reply's one encoder and
framed per the binary protocol version.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from protocol.audio import Pcm, samples_per_frame
from protocol.binary import encode_frame
from protocol.opus import OpusEncoder


class SentenceFramer:
    """Frames one sentence; :meth:`feed` pieces in order, then :meth:`flush` once."""

    def __init__(
        self,
        encoder: OpusEncoder,
        *,
        rate_hz: int,
        frame_duration_ms: int,
        version: int,
        lead_in_ms: int = 0,
    ) -> None:
        self._encoder, self._version, self._rate = encoder, version, rate_hz
        self._samples = samples_per_frame(rate_hz, frame_duration_ms)
        self._pending = np.zeros(0, dtype=np.int16)
        self._resampler: Any = None
        self._source_rate: int | None = None
        if lead_in_ms > 0:
            frames = -(-lead_in_ms * rate_hz // 1000 // self._samples)
            self._pending = np.zeros(frames * self._samples, dtype=np.int16)

    def feed(self, pcm: Pcm, rate_hz: int) -> list[bytes]:
        """Packets for the whole frames available after ``pcm`` (at ``rate_hz``)."""
        self._pending = np.concatenate((self._pending, self._resample(pcm, rate_hz, last=False)))
        return self._cut(final=False)

    def flush(self) -> list[bytes]:
        """The rest, zero-padded to a whole frame."""
        if self._resampler is not None:
            tail = self._resample(np.zeros(0, dtype=np.int16), self._source_rate or 0, last=True)
            self._pending = np.concatenate((self._pending, tail))
        return self._cut(final=True)

    def _resample(self, pcm: Pcm, rate_hz: int, *, last: bool) -> Pcm:
        pcm = np.asarray(pcm, dtype=np.int16)
        head = np.zeros(0, dtype=np.int16)
        if self._resampler is not None and rate_hz != self._source_rate and not last:
            # a voice change mid-sentence (mixed-language text): drain the old stream first
            head = np.asarray(self._resampler.resample_chunk(head, last=True), dtype=np.int16)
            self._resampler = self._source_rate = None
        if rate_hz == self._rate:
            return np.concatenate((head, pcm)) if head.size else pcm
        if self._resampler is None:
            import soxr

            self._resampler = soxr.ResampleStream(rate_hz, self._rate, 1, dtype="int16")
            self._source_rate = rate_hz
        out = np.asarray(self._resampler.resample_chunk(pcm, last=last), dtype=np.int16)
        return np.concatenate((head, out)) if head.size else out

    def _cut(self, *, final: bool) -> list[bytes]:
        n = self._samples
        whole = len(self._pending) // n
        if final and len(self._pending) % n:
            padded = np.zeros((whole + 1) * n, dtype=np.int16)
            padded[: len(self._pending)] = self._pending
            self._pending, whole = padded, whole + 1
        frames = [self._pending[i * n : (i + 1) * n] for i in range(whole)]
        self._pending = self._pending[whole * n :]
        return [encode_frame(self._encoder.encode(f), self._version) for f in frames]
