"""What the deviant test server does (:class:`DeviantConfig`) and what it saw per socket
(:class:`SessionLog`); see :mod:`tests.peers.deviant_server` for the deviations."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class DeviantConfig:
    """What the deviant server does; durations in s, levels in dBFS. See the module docstring."""

    greet_on_detect: bool = True
    ping_interval_s: float | None = 20.0
    raw_opus_on_v2: bool = True
    reuse_mcp_ids: bool = True
    idle_close_s: float | None = 180.0
    late_abort_in_greeting: bool = True
    working: bool = False
    greeting_text: str = "Yes? I am listening."
    stt_text: str = "what time is it"
    reply_text: str = "It is twelve o'clock."
    sample_rate_hz: int = 24000
    """Downlink Opus rate announced in the server hello (16000 or 24000)."""
    speech_dbfs: float = -45.0
    min_speech_frames: int = 3
    end_silence_frames: int = 6
    max_turn_frames: int = 200

    @classmethod
    def conformant(cls, **changes: Any) -> DeviantConfig:
        """No deviation at all (greets, but frames, pings, ids, idle close and abort are right)."""
        base = cls(
            ping_interval_s=None,
            raw_opus_on_v2=False,
            reuse_mcp_ids=False,
            idle_close_s=110.0,
            late_abort_in_greeting=False,
        )
        return replace(base, **changes)


@dataclass
class SessionLog:
    """What happened on one socket (times: event-loop seconds)."""

    index: int
    version: int
    greetings: list[tuple[float, float | None]] = field(default_factory=list)
    """(tts start, tts stop) of every greeting."""
    replies: list[tuple[float, float | None]] = field(default_factory=list)
    aborts: list[float] = field(default_factory=list)
    loud_frames: list[float] = field(default_factory=list)
    """Arrival times of uplink frames louder than ``speech_dbfs``."""
    mcp_ids_sent: list[int] = field(default_factory=list)
    closed_idle: bool = False
