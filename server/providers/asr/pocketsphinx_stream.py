"""One pocketsphinx utterance that shares a small pool of decoders with every other session.

A stream keeps the audio of its utterance (bounded) and decodes it on a pooled decoder when one
is free, so partial transcripts stream as usual. When more people talk at once than there are
decoders, a stream without one just keeps its audio. At the end of the utterance, the latency-
critical moment, :meth:`PocketsphinxStream.finish` takes a free decoder or, failing that, the
decoder of a stream still in mid-utterance; that stream re-decodes its kept audio later (grammar
decoding runs ~50× faster than real time). Only when every decoder is busy finishing does
``finish`` wait (bounded). A stream decodes from its speaker's cepstral mean on whichever
decoder it gets (and again after a hand-over), so the result does not depend on the decoder's
history. ``accept``/``finish`` block while decoding: call them from the executor, never on the
event loop.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from protocol.audio import Pcm
from server.providers.asr.grammar import is_garbage
from server.providers.base import Transcript

if TYPE_CHECKING:
    from server.providers.asr.pocketsphinx import PocketsphinxAsr, _Decoder

MAX_KEPT_BYTES: Final = 30 * 16000 * 2
"""Audio a stream keeps (30 s at 16 kHz; utterances are capped shorter)."""
SLICE_BYTES: Final = 20 * 16 * 2
"""Audio per ``process_raw`` call (20 ms) when decoding through the binding (when
:mod:`~server.providers.asr.pocketsphinx_native` is unavailable). The binding holds the GIL
while it decodes, so a long call stalls the event loop (2 s of catch-up in LM mode: 200 ms);
20 ms slices hold it < 1 ms in grammar mode and ~5 ms in LM mode, at no extra CPU (measured)."""


class PocketsphinxStream:
    """One utterance; thread-safe."""

    def __init__(
        self, provider: PocketsphinxAsr, phrases: tuple[str, ...] | None, speaker: str | None
    ) -> None:
        self._provider = provider
        self._phrases = phrases
        self._speaker = speaker
        self._start_mean = provider.means.start(speaker)
        """The cepstral mean every decoding of this utterance starts from."""
        self._decoder: _Decoder | None = None
        self._audio: list[bytes] = []
        self._audio_bytes = 0
        self._fed = 0
        """Chunks of ``_audio`` the current decoder has decoded."""
        self._last = ""
        self._final: Transcript | None = None
        self._finishing = False
        self._closed = False
        self._lock = threading.Lock()

    def accept(self, pcm: Pcm) -> Transcript | None:
        """Add audio; returns a partial transcript when it changed (None while no decoder)."""
        with self._lock:
            if self._closed or self._final is not None:
                raise RuntimeError("ASR stream already finished")
            data = np.ascontiguousarray(pcm, dtype=np.int16).tobytes()
            if data:
                self._keep(data)
            if self._decoder is None:
                decoder = self._provider.pool.try_acquire()
                if decoder is None:
                    return None  # every decoder busy: the audio waits in _audio
                self._attach(decoder)
            self._feed()
            text = _hyp_text(self._decoder_raw())
            if text == self._last:
                return None
            self._last = text
            return Transcript(text, is_final=False)

    def finish(self) -> Transcript:
        """The final transcript. Raises ``PoolBusy`` if no decoder frees up in time."""
        with self._lock:
            if self._final is None:
                self._finishing = True
                text = ""
                if self._decoder is None and self._audio:
                    self._attach(self._provider.decoder_for_finish(self))
                if self._decoder is not None:
                    self._feed()
                    raw = self._decoder_raw()
                    raw.end_utt()
                    self._provider.means.remember(self._speaker, raw.get_cmn(False))
                    words = _hyp_words(raw)
                    self._detach(release=True)
                    rejected = any(is_garbage(w) for w in words)
                    text = " ".join(w for w in words if not is_garbage(w))
                    # out of grammar (the phone loop won): what was heard, never to act on
                    self._final = Transcript(text, is_final=True, rejected=rejected)
                if self._final is None:
                    self._final = Transcript(text, is_final=True)
            return self._final

    def close(self) -> None:
        """Drop the utterance and give the decoder back; safe to call twice."""
        with self._lock:
            self._closed = True
            if self._decoder is not None:
                try:
                    self._decoder_raw().end_utt()
                finally:
                    self._detach(release=True)

    def hand_over(self) -> _Decoder | None:
        """Give up this stream's decoder to a finishing stream (None if busy or finishing).

        Never blocks: the caller holds its own stream lock, so waiting here could deadlock.
        """
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._decoder is None or self._finishing or self._closed:
                return None
            decoder = self._decoder
            decoder.raw.end_utt()
            self._detach(release=False)
            return decoder
        finally:
            self._lock.release()

    # ------------------------------------------------------------------ internals

    def _decoder_raw(self) -> Any:
        assert self._decoder is not None
        return self._decoder.raw

    def _keep(self, data: bytes) -> None:
        self._audio.append(data)
        self._audio_bytes += len(data)
        while self._audio_bytes > MAX_KEPT_BYTES:
            self._audio_bytes -= len(self._audio.pop(0))
            self._fed = max(0, self._fed - 1)

    def _attach(self, decoder: _Decoder) -> None:
        # releases it on failure
        self._provider.start_utterance(decoder, self._phrases, self._start_mean)
        self._decoder, self._fed = decoder, 0
        self._provider.holders_add(self)

    def _feed(self) -> None:
        if self._fed < len(self._audio):
            assert self._decoder is not None
            self._decoder.decode(b"".join(self._audio[self._fed :]), SLICE_BYTES)
            self._fed = len(self._audio)

    def _detach(self, *, release: bool) -> None:
        decoder, self._decoder = self._decoder, None
        self._fed = 0
        self._provider.holders_discard(self)
        if decoder is not None and release:
            self._provider.pool.release(decoder)


def _hyp_words(raw: Any) -> list[str]:
    hyp = raw.hyp()
    return hyp.hypstr.split() if hyp is not None else []


def _hyp_text(raw: Any) -> str:
    """The hypothesis without garbage-loop phones (partials show only real words)."""
    return " ".join(w for w in _hyp_words(raw) if not is_garbage(w))
