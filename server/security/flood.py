"""A session's uplink gate: audio faster than real time and text floods, pure, fed ``now_s``.

Two token buckets: audio frames refill at ``max_audio_frames_per_s`` up to ``audio_burst_frames``
(a board sends 16.7 frames/s of 60 ms Opus, plus a buffered burst after a wake word), text
messages at ``max_messages_per_s`` up to ``message_burst``. A frame past its bucket is dropped
(``uplink-flood``), a frame longer than ``max_audio_frame_bytes`` is not one Opus packet and is
dropped too (``uplink-oversized``); so the session's audio memory is bounded by the inbox's
frame count × ``max_audio_frame_bytes``. A client still flooding after
``flood_close_after_frames`` dropped frames, or sending text past its bucket, is closed (1008):
text cannot be dropped without changing the conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from server.security.settings import LimitSettings

POLICY_VIOLATION = 1008


class Verdict(Enum):
    PASS = "pass"
    DROP_FLOOD = "uplink-flood"
    DROP_OVERSIZED = "uplink-oversized"
    CLOSE = "close"


@dataclass
class _Bucket:
    rate_per_s: float
    capacity: float
    level: float
    at_s: float | None = None

    def take(self, now_s: float) -> bool:
        if self.at_s is not None:
            self.level = min(self.capacity, self.level + (now_s - self.at_s) * self.rate_per_s)
        self.at_s = now_s
        if self.level >= 1.0:
            self.level -= 1.0
            return True
        return False


class UplinkGate:
    """One per session; ``audio(size, now_s)`` and ``text(now_s)`` say what to do with an input."""

    def __init__(self, limits: LimitSettings) -> None:
        self._limits = limits
        self._audio = _Bucket(
            limits.max_audio_frames_per_s, limits.audio_burst_frames, limits.audio_burst_frames
        )
        self._text = _Bucket(limits.max_messages_per_s, limits.message_burst, limits.message_burst)
        self.flood_dropped = 0
        self.oversized_dropped = 0
        self.close_reason = ""

    def audio(self, size_bytes: int, now_s: float) -> Verdict:
        if size_bytes > self._limits.max_audio_frame_bytes:
            self.oversized_dropped += 1
            return Verdict.DROP_OVERSIZED
        if self._audio.take(now_s):
            return Verdict.PASS
        self.flood_dropped += 1
        if self.flood_dropped >= self._limits.flood_close_after_frames:
            self.close_reason = "audio sent faster than real time"
            return Verdict.CLOSE
        return Verdict.DROP_FLOOD

    def text(self, now_s: float) -> Verdict:
        if self._text.take(now_s):
            return Verdict.PASS
        self.close_reason = "too many messages"
        return Verdict.CLOSE
