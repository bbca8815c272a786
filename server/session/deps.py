"""What every session shares: settings, the providers, the executor and the metrics.

Built once by :mod:`server.app` and handed to each :class:`~.connection.Connection`.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, field

from server.config import Settings
from server.metrics import ServerMetrics
from server.pipeline.reply_cache import ReplyAudioCache
from server.pipeline.speech_in_batch import SpeechInBatcher
from server.providers.base import AsrProvider, DialogueProvider, TtsProvider, VadProvider


@dataclass(frozen=True)
class BargeInGate:
    """Realtime mode echo gate: the user interrupts the server's speech only with speech that
    lasts ``min_speech_ms`` (well above the utterance start's ``vad.min_speech_ms``) and starts
    at least ``echo_guard_s`` after ``tts start`` (the first syllables are the loudest echo)."""

    min_speech_ms: float = 480.0
    echo_guard_s: float = 0.3


@dataclass
class SessionDeps:
    settings: Settings
    vad: VadProvider
    asr: AsrProvider
    dialogue: DialogueProvider
    tts: TtsProvider
    executor: Executor
    metrics: ServerMetrics
    fallback_tts: TtsProvider | None = None
    """Speaks a sentence ``tts`` failed on (None: that sentence is skipped)."""
    reply_cache: ReplyAudioCache | None = None
    """Sentences spoken before, as packets, shared by all sessions (None: ``tts.cache_mb`` 0)."""
    speech_in: SpeechInBatcher | None = None
    """Runs every session's uplink frames in the executor, batching sessions that talk at once
    (None: each session runs its own, one call at a time)."""
    barge_in: BargeInGate = field(default_factory=BargeInGate)
    uplink_queue_frames: int = 50
    """Uplink frames waiting for VAD/ASR before the oldest is dropped (3 s at 60 ms)."""
