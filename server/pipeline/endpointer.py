"""Turns per-window VAD decisions into utterance start/end events (pure, time-driven, sans-I/O).

The caller passes each decision with the time of its window (ms on any monotonic timeline, e.g.
audio samples received / 16); nothing here reads a clock or sleeps.

* Speech starts when speech has been seen continuously for ``min_speech_ms``; the event's
  ``at_ms`` is the first speech window of that run. Shorter blips are ignored.
* Speech ends ``endpoint_silence_ms`` after the last speech window (``reason="silence"``), as
  soon as a non-speech window at or past that time arrives, or when the utterance reaches
  ``max_utterance_ms`` (``reason="max_length"``, reported at the first window at or past it).
* When the caller says the words so far already form a complete command (``complete=True``,
  e.g. the streaming transcript is one of the dialogue's phrases), the shorter
  ``complete_silence_ms`` is enough: a finished command is answered sooner, while a pause in the
  middle of one ("set the volume to … thirty") still gets the full silence.
* When the command is also a *leaf* (no phrase continues it, ``leaf=True``) and the caller
  tells where the voice itself last was (``voiced_until_ms``, from the audio: the VAD's speech
  tail lags it by ~150 ms), speech ends at the first non-speech window once the audio has been
  unvoiced for ``leaf_silence_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from server.config import VadSettings

_DEFAULTS = VadSettings.model_fields


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    at_ms: float
    """Time of the first speech window of the utterance."""


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    at_ms: float
    """Last speech + endpoint silence (``silence``) or start + max length (``max_length``)."""
    reason: Literal["silence", "max_length"]


EndpointEvent = SpeechStarted | SpeechEnded


class Endpointer:
    """State machine: idle → (speech for ``min_speech_ms``) → speaking → (silence|max) → idle."""

    def __init__(
        self,
        endpoint_silence_ms: float = float(_DEFAULTS["endpoint_silence_ms"].default),
        min_speech_ms: float = float(_DEFAULTS["min_speech_ms"].default),
        max_utterance_ms: float = float(_DEFAULTS["max_utterance_s"].default) * 1000,
        complete_silence_ms: float | None = None,
        leaf_silence_ms: float = 0.0,
    ) -> None:
        """``complete_silence_ms`` None = same as ``endpoint_silence_ms`` (no shortcut);
        ``leaf_silence_ms`` 0 = no leaf shortcut."""
        complete = endpoint_silence_ms if complete_silence_ms is None else complete_silence_ms
        if endpoint_silence_ms <= 0 or min_speech_ms < 0 or max_utterance_ms <= 0 or complete <= 0:
            raise ValueError(
                "endpoint_silence_ms, complete_silence_ms and max_utterance_ms must be > 0, "
                "min_speech_ms >= 0"
            )
        self.endpoint_silence_ms = float(endpoint_silence_ms)
        self.complete_silence_ms = float(min(complete, endpoint_silence_ms))
        self.min_speech_ms = float(min_speech_ms)
        self.max_utterance_ms = float(max_utterance_ms)
        self.leaf_silence_ms = max(0.0, float(leaf_silence_ms))
        self.reset()

    @classmethod
    def from_settings(cls, settings: VadSettings) -> Endpointer:
        return cls(
            settings.endpoint_silence_ms,
            settings.min_speech_ms,
            settings.max_utterance_s * 1000,
            settings.complete_silence_ms,
            settings.leaf_silence_ms,
        )

    def reset(self) -> None:
        """Back to idle, forgetting any speech in progress."""
        self._candidate_ms: float | None = None  # first window of a speech run (idle only)
        self._started_ms: float | None = None  # set while speaking
        self._last_speech_ms = 0.0
        self._last_now_ms: float | None = None

    @property
    def speaking(self) -> bool:
        """True between SpeechStarted and SpeechEnded."""
        return self._started_ms is not None

    def process(
        self,
        is_speech: bool,
        now_ms: float,
        *,
        complete: bool = False,
        leaf: bool = False,
        voiced_until_ms: float | None = None,
    ) -> list[EndpointEvent]:
        """Feed one VAD decision for the window at ``now_ms``; returns the events it causes.

        ``complete``: the words heard so far form a complete command; ``leaf``: one no phrase
        continues, the voice last heard at ``voiced_until_ms`` (see the module doc).

        Raises ``ValueError`` if time goes backwards.
        """
        if self._last_now_ms is not None and now_ms < self._last_now_ms:
            raise ValueError(f"time went backwards: {now_ms} < {self._last_now_ms}")
        self._last_now_ms = now_ms
        events: list[EndpointEvent] = []
        if self._started_ms is not None:
            max_end = self._started_ms + self.max_utterance_ms
            silence = self.complete_silence_ms if complete else self.endpoint_silence_ms
            silence_end = self._last_speech_ms + silence
            if complete and leaf and self.leaf_silence_ms > 0 and voiced_until_ms is not None:
                silence_end = min(silence_end, max(now_ms, voiced_until_ms + self.leaf_silence_ms))
            if not is_speech and silence_end <= max_end and now_ms >= silence_end:
                events.append(SpeechEnded(silence_end, "silence"))
                self._started_ms = None
            elif now_ms >= max_end:
                events.append(SpeechEnded(max_end, "max_length"))
                self._started_ms = None
            elif is_speech:
                self._last_speech_ms = now_ms
            if self._started_ms is not None:
                return events
        # idle
        if not is_speech:
            self._candidate_ms = None
            return events
        if self._candidate_ms is None:
            self._candidate_ms = now_ms
        if now_ms - self._candidate_ms >= self.min_speech_ms:
            events.append(SpeechStarted(self._candidate_ms))
            self._started_ms = self._candidate_ms
            self._last_speech_ms = now_ms
            self._candidate_ms = None
        return events
