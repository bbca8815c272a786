"""Per-turn latency measurement (benchmarks.md), timed from the true end of speech.

All times are ``time.monotonic()`` seconds; results are milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TurnTimer:
    """Marks of one turn; :meth:`result` gives the benchmark figures."""

    index: int = 0
    speech_end: float | None = None
    stt: float | None = None
    first_audio: float | None = None
    abort_sent: float | None = None
    tts_stop: float | None = None
    stale_frames: int = 0
    stt_text: str | None = None
    sentences: list[str] = field(default_factory=list)

    def result(self) -> dict[str, Any]:
        def ms(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else round((b - a) * 1000, 1)

        return {
            "turn": self.index,
            "endpoint_ms": ms(self.speech_end, self.stt),
            "first_audio_ms": ms(self.speech_end, self.first_audio),
            "abort_ms": ms(self.abort_sent, self.tts_stop),
            "stale_frames": self.stale_frames,
            "stt": self.stt_text,
        }
