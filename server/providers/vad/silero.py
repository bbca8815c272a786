"""Silero VAD (``models/silero_vad.onnx``, 16 kHz) run by ``sherpa_onnx.VoiceActivityDetector``.

Each detector owns an onnxruntime session (about 7.5 MiB RSS), so the provider keeps a bounded
free list of idle detectors: a stream takes one when created and gives it back (reset) on
:meth:`SileroVadStream.close` or when garbage-collected. Decisions are per 512-sample window
(32 ms); smoothing into utterances is the endpointer's job, so sherpa's own hysteresis is set to
its minimum.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import weakref
from pathlib import Path
from typing import Any, Final

import numpy as np

from protocol.audio import Pcm
from server.config import VadSettings
from server.providers.base import ProviderUnavailable

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ: Final = 16000
WINDOW_SAMPLES: Final = 512
KNOWN_MODELS: Final = {
    # sha256 -> size in bytes; only these files are known to load (others kill the process).
    "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3": 2_327_524,
}
MAX_IDLE_DETECTORS: Final = 16


def check_model_file(path: Path) -> None:
    """Raise :class:`ProviderUnavailable` unless ``path`` is a known-good silero_vad.onnx."""
    fix = "run `make setup` (it fetches models/silero_vad.onnx)"
    if not path.is_file():
        raise ProviderUnavailable(f"silero VAD model not found at {path}; {fix}")
    size = path.stat().st_size
    if size not in KNOWN_MODELS.values():
        raise ProviderUnavailable(
            f"silero VAD model {path} has an unexpected size ({size} bytes); {fix}"
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest not in KNOWN_MODELS:
        raise ProviderUnavailable(f"silero VAD model {path} has a wrong sha256 ({digest}); {fix}")


class SileroVadStream:
    """Per-session VAD: feed 16 kHz PCM, get one decision per 32 ms window."""

    def __init__(self, provider: SileroVad) -> None:
        self._provider = provider
        self._detector: Any = provider._checkout()
        self._pending = np.zeros(0, dtype=np.float32)
        self._finalizer = weakref.finalize(self, provider._checkin, self._detector)

    @property
    def window_ms(self) -> float:
        return WINDOW_SAMPLES * 1000 / SAMPLE_RATE_HZ

    def accept(self, pcm: Pcm) -> list[bool]:
        if not self._finalizer.alive:
            raise RuntimeError("VAD stream is closed")
        samples = np.asarray(pcm, dtype=np.int16).astype(np.float32) / 32768.0
        buf = np.concatenate((self._pending, samples)) if self._pending.size else samples
        decisions: list[bool] = []
        detector = self._detector
        n_full = len(buf) // WINDOW_SAMPLES * WINDOW_SAMPLES
        for start in range(0, n_full, WINDOW_SAMPLES):
            detector.accept_waveform(buf[start : start + WINDOW_SAMPLES])
            decisions.append(bool(detector.is_speech_detected()))
        while not detector.empty():  # we do not use its segments; keep memory bounded
            detector.pop()
        self._pending = buf[n_full:].copy()
        return decisions

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
        if self._finalizer.alive:
            self._detector.reset()

    def close(self) -> None:
        """Give the detector back to the provider; safe to call twice."""
        self._finalizer()


class SileroVad:
    """The VAD provider (registry name ``silero``); shared by all sessions, thread-safe."""

    name = "silero"

    def __init__(self, settings: VadSettings) -> None:
        check_model_file(Path(settings.model_path))
        try:
            import sherpa_onnx
        except ImportError as exc:  # pragma: no cover - it is a core dependency
            raise ProviderUnavailable(f"sherpa-onnx is not installed ({exc})") from exc
        config = sherpa_onnx.VadModelConfig()
        config.silero_vad.model = str(settings.model_path)
        config.silero_vad.threshold = settings.threshold
        config.silero_vad.min_silence_duration = 0.01  # the endpointer smooths, not sherpa
        config.silero_vad.min_speech_duration = 0.01
        # sherpa buffers the speech in progress: bound it a little past the endpointer's limit
        self._max_speech_s = settings.max_utterance_s + 5.0
        config.silero_vad.max_speech_duration = self._max_speech_s
        config.silero_vad.window_size = WINDOW_SAMPLES
        config.sample_rate = SAMPLE_RATE_HZ
        config.num_threads = 1
        if not config.validate():
            raise ProviderUnavailable(f"invalid silero VAD configuration for {settings.model_path}")
        self._sherpa = sherpa_onnx
        self._config = config
        self._lock = threading.Lock()
        self._idle: list[Any] = []
        self._idle.append(self._new_detector())  # load once now so a bad setup fails at startup

    def _new_detector(self) -> Any:
        return self._sherpa.VoiceActivityDetector(
            self._config, buffer_size_in_seconds=self._max_speech_s + 1
        )

    def _checkout(self) -> Any:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._new_detector()

    def _checkin(self, detector: Any) -> None:
        detector.reset()
        with self._lock:
            if len(self._idle) < MAX_IDLE_DETECTORS:
                self._idle.append(detector)

    @property
    def idle_detectors(self) -> int:
        """Detectors ready for reuse (for tests and metrics)."""
        with self._lock:
            return len(self._idle)

    def create_stream(self) -> SileroVadStream:
        return SileroVadStream(self)


def create(settings: VadSettings) -> SileroVad:
    return SileroVad(settings)
