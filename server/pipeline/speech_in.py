"""Speech in, for one session: Opus packets → 16 kHz PCM → VAD → endpointer → streaming ASR.

:class:`SpeechIn` is synchronous and CPU-bound: the session calls it from the server's
bounded executor, one call at a time (never concurrently). Times: ``audio_ms`` is the audio
timeline of the current utterance (samples received / 16); ``arrival_s`` are the caller's
monotonic clock readings of when a packet arrived (used for the latency ledger).

The Opus decoder always outputs 16 kHz (Opus decodes any stream at any of its rates), so no
resampling is needed whatever rate the device encodes at.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from protocol.audio import Pcm
from protocol.errors import CorruptAudio
from protocol.opus import OpusDecoder
from server.config import VadSettings
from server.pipeline.endpointer import Endpointer, SpeechEnded, SpeechStarted
from server.providers.base import (
    AsrProvider,
    AsrStream,
    ProviderError,
    Transcript,
    VadProvider,
    VadStream,
    open_asr_stream,
)

logger = logging.getLogger(__name__)

ASR_RATE_HZ: Final = 16000
PRE_ROLL_MS: Final = 400
"""Audio fed to ASR from before the endpointer's speech start (soft onsets)."""
RING_MS: Final = 1000
REDECODE_MAX_SAMPLES: Final = 30 * 16000
"""Longest utterance kept for re-recognition with new phrases (30 s at 16 kHz)."""
VOICED_ABS: Final = 500
"""|sample| at or above this counts as voiced (≈ −36 dBFS) when locating the end of speech."""
STABLE_QUIET_MS: Final = 100.0
"""Quiet after a complete command that makes its partial stable while the VAD, which lags the
speech by ~150 ms, still says speech (a speculative answer then starts that much sooner)."""
SETTLE_MS: Final = 150.0
"""A partial that changed later than this after the last voiced sample was decided in the
silence ("thirty" → "thirteen" as the audio fell to digital zero): the endpointer then waits
the full silence, not a complete command's shorter one (through SpeechIn: 3 of 240 "thirty"s
misheard without this rule, 1 with it; the waits for other commands did not change)."""
_NOT_WORD = re.compile(r"[^\w' ]+")


def phrase_key(text: str) -> str:
    """Lowercase words separated by one space, punctuation dropped (to compare transcripts)."""
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


@dataclass(frozen=True, slots=True)
class PhraseSets:
    """A grammar's phrases in ``phrase_key`` form, as the endpointer needs them."""

    complete: frozenset[str]
    """Every phrase."""
    leaves: frozenset[str]
    """Phrases no other phrase continues, except optional endings: a phrase that is another
    phrase plus one word ("... thirty eight" after "... thirty"). pocketsphinx hears such a word
    in the fall of the last one into silence, and the leaf shortcut then ended the utterance
    before more silence undid it (measured through this chain, 4 voices, 9 frame offsets: 17 of
    864 commands wrong, 14 of them "... thirty eight"; 9 without the shortcut for them)."""


@functools.lru_cache(maxsize=16)
def phrase_sets(phrases: tuple[str, ...]) -> PhraseSets:
    """The :class:`PhraseSets` of ``phrases``; cached, since every session with the same tools
    has the same phrases (~20 ms for 2,000 of them)."""
    keys = frozenset(phrase_key(p) for p in phrases)
    optional = {p for p in keys if p.rpartition(" ")[0] in keys}
    return PhraseSets(keys, leaves(keys) - optional)


def leaves(phrases: frozenset[str]) -> frozenset[str]:
    """The phrases (``phrase_key`` form) that no other phrase continues word for word."""
    continued: set[str] = set()
    for phrase in phrases:
        words = phrase.split(" ")
        continued.update(" ".join(words[:n]) for n in range(1, len(words)))
    return phrases - continued


@dataclass(slots=True)
class SpeechInResult:
    """What one packet (or a finish) produced."""

    speech_started: bool = False
    speech_run_ms: float = 0.0
    """Length of the current run of speech windows (0 after a non-speech window)."""
    final_text: str | None = None
    """Set when the utterance ended: the final transcript (may be empty)."""
    heard_speech: bool = False
    asr_failed: bool = False
    """The recogniser failed during this utterance (``final_text`` is then empty or partial)."""
    end_reason: str = ""
    speech_end_s: float | None = None
    """When the user's speech really ended: arrival (monotonic s) of the packet holding the last
    voiced sample before the VAD's last speech window (the VAD itself lags ~150 ms)."""
    detected_s: float | None = None
    """Monotonic time the end of the utterance was decided."""
    final_s: float | None = None
    """Monotonic time the final transcript was ready."""
    rejected: bool = False
    """The recogniser heard speech it judged unusable (``final_text`` is what it heard)."""
    language: str | None = None
    """Language the recogniser detected, if it tells."""
    errors: list[str] = field(default_factory=list)
    partial_text: str | None = None
    """The recogniser's new partial transcript, when this packet changed it."""
    stable_text: str | None = None
    """The partial transcript is a complete command and the user went quiet after it (a
    non-speech window, or :data:`STABLE_QUIET_MS` without a voiced sample while the VAD's
    hang-over still says speech): its answer may start before the endpoint."""
    transcript: Transcript | None = None
    """The recogniser's final :class:`Transcript` (confidence, N-best), when it gave one."""
    pending: AsrStream | None = None
    """With ``async_finish``: the ended utterance's network stream, whose ``finish_async`` the
    caller awaits (then fills ``final_text``/``transcript`` and closes it)."""


class SpeechIn:
    """Per-session speech-in chain; ``begin`` an utterance, ``feed`` packets, ``finish``.

    The grammar phrases can change at any time (:meth:`set_phrases`, e.g. when the device's
    tools arrive after the utterance began): an utterance in progress is then re-recognised from
    its start with the new phrases (grammar decoding runs at ~50× real time), so nothing waits
    for tool discovery and nothing is lost to it."""

    def __init__(
        self,
        vad: VadProvider,
        asr: AsrProvider,
        vad_settings: VadSettings,
        *,
        frame_duration_ms: int = 60,
        async_finish: bool = False,
        speaker: str | None = None,
    ) -> None:
        """``speaker``: who is talking (a board's device id, a session id), for ASR engines
        that adapt to each speaker's channel (None: anonymous)."""
        self._speaker = speaker
        self._async_finish = async_finish
        """Hand a stream with ``finish_async`` back instead of blocking on its round trip."""
        self._vad_provider = vad
        self._asr = asr
        self._settings = vad_settings
        self._decoder = OpusDecoder(ASR_RATE_HZ, frame_duration_ms)
        self._vad: VadStream | None = None
        self._endpointer = Endpointer.from_settings(vad_settings)
        self._stream: AsrStream | None = None
        self._endpointing = True
        self._active = False
        self._ring: list[tuple[float, Pcm, float]] = []
        """(audio start ms, PCM, arrival s) of each packet of the last ``RING_MS``."""
        self._audio_ms = 0.0
        self._vad_ms = 0.0
        self._run_ms = 0.0
        self._heard = False
        self._asr_failed = False
        self._last_speech_ms = 0.0
        self._phrase_sets = phrase_sets(())
        self._phrases: tuple[str, ...] = ()
        """The dialogue's phrases for this utterance (empty: free text)."""
        self._hyp_complete = False
        self._hyp_leaf = False
        self._hyp_changed_ms = 0.0
        """Audio time (ms) the partial last changed."""
        self._voiced_until_ms: float | None = None
        """End of the last voiced sample of the utterance (ms of audio)."""
        self._hyp_text = ""
        self._stable_text = ""
        """The last partial reported as :attr:`SpeechInResult.stable_text` (once per text)."""
        self._utterance: list[Pcm] = []
        """PCM fed to the ASR stream so far (to re-recognise with new phrases)."""
        self._utterance_samples = 0

    @property
    def active(self) -> bool:
        return self._active

    def set_phrases(self, phrases: Sequence[str] | None) -> None:
        """Restrict recognition to ``phrases`` (None or empty: free text) from now on."""
        given = tuple(phrases or ())
        if given == self._phrases:
            return
        self._phrases = given
        self._phrase_sets = phrase_sets(given)
        if self._stream is not None:  # re-recognise the utterance so far with the new grammar
            self._stream.close()
            self._stream = None
            audio, self._utterance, self._utterance_samples = self._utterance, [], 0
            try:
                self._stream = open_asr_stream(self._asr, self._phrases or None, self._speaker)
            except ProviderError as exc:
                logger.warning("ASR stream unavailable: %s", exc)
                self._asr_failed = True
                return
            result = SpeechInResult()
            if audio:
                self._asr_accept(np.concatenate(audio), result)

    def begin(self, *, endpointing: bool) -> None:
        """Start an utterance: ``endpointing`` False (manual mode) means only ``finish`` ends it."""
        self.cancel()
        self._endpointing = endpointing
        self._decoder.reset()
        if self._vad is None:
            self._vad = self._vad_provider.create_stream()
        self._vad.reset()
        self._endpointer.reset()
        self._active = True
        self._ring = []
        self._audio_ms = self._vad_ms = self._run_ms = 0.0
        self._heard = False
        self._asr_failed = False
        self._last_speech_ms = 0.0
        self._hyp_complete = self._hyp_leaf = False
        self._hyp_changed_ms = 0.0
        self._voiced_until_ms = None
        self._hyp_text = self._stable_text = ""
        self._utterance = []
        self._utterance_samples = 0

    def feed(self, packet: bytes, arrival_s: float) -> SpeechInResult:
        """Decode and process one Opus packet. A corrupt packet is reported in ``errors``."""
        result = SpeechInResult()
        if not self._active or self._vad is None:
            return result
        pcm = self.decode(packet, result)
        return result if pcm is None else self.feed_pcm(pcm, arrival_s, result)

    def decode(self, packet: bytes, result: SpeechInResult) -> Pcm | None:
        """The packet's 16 kHz PCM; None (and ``corrupt-audio`` in ``result``) if corrupt."""
        try:
            return self._decoder.decode(packet)
        except CorruptAudio:
            result.errors.append("corrupt-audio")
            return None

    @property
    def vad_stream(self) -> VadStream | None:
        """The utterance's VAD stream (None before the first ``begin`` or after ``close``)."""
        return self._vad

    def feed_pcm(
        self,
        pcm: Pcm,
        arrival_s: float,
        result: SpeechInResult | None = None,
        *,
        decisions: Sequence[bool] | None = None,
    ) -> SpeechInResult:
        """Process 16 kHz int16 mono PCM (for clients that send PCM, not Opus). ``decisions``:
        the VAD stream's decisions on ``pcm`` when the caller already ran it (the batcher)."""
        result = SpeechInResult() if result is None else result
        if not self._active or self._vad is None:
            return result
        start_ms = self._audio_ms
        self._audio_ms += len(pcm) * 1000 / ASR_RATE_HZ
        self._ring.append((start_ms, pcm, arrival_s))
        while self._ring and self._ring[0][0] < self._audio_ms - RING_MS:
            self._ring.pop(0)
        if self._stream is not None:
            self._asr_accept(pcm, result)
        voiced = np.flatnonzero(np.abs(pcm.astype(np.int32)) >= VOICED_ABS)
        if voiced.size:
            self._voiced_until_ms = start_ms + (int(voiced[-1]) + 1) * 1000 / ASR_RATE_HZ
        for is_speech in self._vad.accept(pcm) if decisions is None else decisions:
            self._vad_ms += self._vad.window_ms
            self._run_ms = self._run_ms + self._vad.window_ms if is_speech else 0.0
            if is_speech:
                self._last_speech_ms = self._vad_ms
            events = self._endpointer.process(
                is_speech,
                self._vad_ms,
                complete=self._hyp_complete and self._hyp_settled(),
                leaf=self._hyp_leaf,
                voiced_until_ms=self._voiced_until_ms,
            )
            for event in events:
                if isinstance(event, SpeechStarted) and self._stream is None:
                    self._open_asr(event.at_ms, result)
                    result.speech_started = True
                elif isinstance(event, SpeechEnded) and self._endpointing:
                    self._end(result, event.reason)
                    return result
            if (
                (not is_speech or self._quiet_ms() >= STABLE_QUIET_MS)
                and self._endpointer.speaking
                and self._hyp_complete
                and self._hyp_text != self._stable_text
            ):
                self._stable_text = result.stable_text = self._hyp_text
        result.speech_run_ms = self._run_ms
        return result

    def finish(self) -> SpeechInResult:
        """End the utterance now (``listen stop``): the final transcript."""
        result = SpeechInResult()
        if self._active:
            self._end(result, "stop")
        else:
            result.final_text = ""
        return result

    def cancel(self) -> None:
        """Drop the utterance in progress (returns the pooled ASR decoder)."""
        self._active = False
        stream, self._stream = self._stream, None
        self._utterance = []
        self._utterance_samples = 0
        if stream is not None:
            stream.close()

    def close(self) -> None:
        self.cancel()
        vad, self._vad = self._vad, None
        closer = getattr(vad, "close", None)
        if callable(closer):
            closer()

    # ------------------------------------------------------------------ internals

    def _open_asr(self, speech_at_ms: float, result: SpeechInResult) -> None:
        self._heard = True
        try:
            self._stream = open_asr_stream(self._asr, self._phrases or None, self._speaker)
        except ProviderError as exc:
            logger.warning("ASR stream unavailable: %s", exc)
            result.errors.append(exc.code)
            self._asr_failed = True
            return
        since = speech_at_ms - PRE_ROLL_MS
        chunks = [pcm for start, pcm, _ in self._ring if start + len(pcm) / 16 > since]
        if chunks:
            self._asr_accept(np.concatenate(chunks), result)

    def _asr_accept(self, pcm: Pcm, result: SpeechInResult) -> None:
        if self._stream is None:
            return
        if self._utterance_samples < REDECODE_MAX_SAMPLES:
            self._utterance.append(pcm)
            self._utterance_samples += len(pcm)
        try:
            partial = self._stream.accept(pcm)
        except ProviderError as exc:
            logger.warning("ASR failed while decoding: %s", exc)
            result.errors.append(exc.code)
            self._asr_failed = True
            self._stream.close()
            self._stream = None
            return
        if partial is not None:
            if partial.text != self._hyp_text:
                self._hyp_changed_ms = self._audio_ms
            result.partial_text = self._hyp_text = partial.text
            key = phrase_key(partial.text)
            sets = self._phrase_sets
            self._hyp_complete = key in sets.complete
            self._hyp_leaf = key in sets.leaves

    def _hyp_settled(self) -> bool:
        """The partial has not changed since :data:`SETTLE_MS` after the last voiced sample."""
        until = self._voiced_until_ms
        return until is None or self._hyp_changed_ms <= until + SETTLE_MS

    def _quiet_ms(self) -> float:
        """Audio (ms) since the utterance's last voiced sample; 0 before the first one."""
        until = self._voiced_until_ms
        return 0.0 if until is None else self._audio_ms - until

    def _speech_end_arrival(self) -> float | None:
        """Arrival of the packet holding the last voiced sample up to the last speech window."""
        limit = self._last_speech_ms
        fallback = None
        for start, pcm, arrival in reversed(self._ring):
            if start >= limit:
                continue
            if fallback is None:  # the packet holding the last speech window
                fallback = arrival
            upto = min(len(pcm), int((limit - start) * ASR_RATE_HZ / 1000))
            if np.any(np.abs(pcm[:upto].astype(np.int32)) >= VOICED_ABS):
                return arrival
        return fallback

    def _end(self, result: SpeechInResult, reason: str) -> None:
        result.detected_s = time.monotonic()
        text = ""
        stream, self._stream = self._stream, None
        self._utterance = []
        self._utterance_samples = 0
        if stream is not None and self._async_finish and hasattr(stream, "finish_async"):
            result.pending = stream
        elif stream is not None:
            try:
                transcript = stream.finish()
                result.transcript = transcript
                text = transcript.text
                result.rejected = transcript.rejected
                result.language = transcript.language
            except ProviderError as exc:
                logger.warning("ASR failed to finalise: %s", exc)
                result.errors.append(exc.code)
                self._asr_failed = True
            finally:
                stream.close()
        result.final_s = time.monotonic()
        result.final_text = text
        result.heard_speech = self._heard
        result.asr_failed = self._asr_failed
        result.end_reason = reason
        if self._heard:
            result.speech_end_s = self._speech_end_arrival()
        self._active = False
