"""Per-turn latency ledger: monotonic timestamps (seconds) of each stage, one log line per turn.

Stages (all optional; a cancelled turn lacks the late ones):

* ``speech_end``: arrival of the packet holding the user's last voiced sample (found in the audio:
  the VAD's own decision lags the speech by ~150 ms);
* ``speech_end_detected``: the endpointer (or ``listen stop``) ended the utterance;
* ``asr_final``: the final transcript is known (``stt`` sent right after);
* ``dialogue_first_token``: first text of the answer;
* ``first_sentence_synthesised``: first sentence's audio encoded;
* ``first_frame_sent`` / ``last_frame_sent``: first/last Opus packet written to the socket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from server.metrics import ServerMetrics

STAGE_ORDER: Final = (
    "speech_end",
    "speech_end_detected",
    "asr_final",
    "dialogue_first_token",
    "first_sentence_synthesised",
    "first_frame_sent",
    "last_frame_sent",
)


@dataclass
class TurnLedger:
    turn_id: int
    marks: dict[str, float] = field(default_factory=dict)
    cancelled: bool = False

    def mark(self, stage: str, at_s: float) -> None:
        """Record ``stage`` at monotonic time ``at_s`` (first mark wins)."""
        self.marks.setdefault(stage, at_s)

    def _between(self, start: str, end: str) -> float | None:
        if start in self.marks and end in self.marks:
            return self.marks[end] - self.marks[start]
        return None

    def durations(self) -> dict[str, float]:
        """Stage durations in seconds, keyed by the metrics' stage names.

        ``vad_hangover`` (speech end → end detected: the VAD's tail plus the endpoint silence),
        ``asr_finalise``, ``dialogue_first_token`` and ``first_sentence_synthesised`` (both from
        the ASR final) are the time spent in providers; ``first_frame_sent`` minus
        ``first_sentence_synthesised`` is the server's own share after the endpoint.
        """
        origin = "speech_end" if "speech_end" in self.marks else "speech_end_detected"
        pairs = {
            "vad_hangover": ("speech_end", "speech_end_detected"),
            "asr_finalise": ("speech_end_detected", "asr_final"),
            "dialogue_first_token": ("asr_final", "dialogue_first_token"),
            "first_sentence_synthesised": ("asr_final", "first_sentence_synthesised"),
            "first_frame_sent": ("asr_final", "first_frame_sent"),
            "last_frame_sent": ("first_frame_sent", "last_frame_sent"),
            "endpoint": (origin, "asr_final"),
            "first_audio": (origin, "first_frame_sent"),
        }
        out: dict[str, float] = {}
        for name, (start, end) in pairs.items():
            value = self._between(start, end)
            if value is not None:
                out[name] = value
        return out

    def summary(self) -> str:
        """One human line: every duration in ms."""
        parts = [f"{name}={value * 1000:.0f}ms" for name, value in self.durations().items()]
        state = " cancelled" if self.cancelled else ""
        return f"turn {self.turn_id}{state}: " + (" ".join(parts) or "no timings")

    def observe(self, metrics: ServerMetrics) -> None:
        for name, value in self.durations().items():
            metrics.observe_stage(name, value)
        metrics.turn_observed(self.turn_id, self.durations())  # the dashboard's recent turns
