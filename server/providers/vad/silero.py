"""Silero VAD v5 (``models/silero_vad.onnx``, 16 kHz) on one shared onnxruntime session.

The model is loaded once per server: a stream is only its recurrent state (2×128 floats), the
last 64 samples (the model's context) and a little hysteresis, so opening one costs nothing
(sherpa-onnx's detector loaded its own model per stream: ~100 ms and ~7.5 MiB each), and
onnxruntime releases the GIL while it runs, so sessions on the executor's threads use every core.
Windows of different sessions that wait at the same time run as one batch (:class:`_Batches`),
and :meth:`SileroVad.accept_many` feeds many streams at once (the speech-in batcher does, for
the sessions talking at the same moment): one model call for eight streams costs about what two
single calls do (~115 µs a window instead of ~280 µs).

Decisions are per 512-sample window (32 ms; the model also sees the next window's first 64
samples). A window whose loudest sample is below
``vad.silence_gate_dbfs`` is silence without running the model (digital silence, a muted or
noise-suppressed microphone); the model then starts afresh on the next sound. Speech starts after
two windows above ``threshold`` and ends after two windows below ``threshold - 0.15`` (the
model's customary hysteresis); smoothing into utterances is the endpointer's job.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from protocol.audio import Pcm
from server.config import VadSettings
from server.providers.base import ProviderUnavailable

SAMPLE_RATE_HZ: Final = 16000
WINDOW_SAMPLES: Final = 512
OVERLAP_SAMPLES: Final = 64
"""The v5 model reads 576 samples per 512-sample step. The decision for 32 ms block ``i`` is the
model's on block ``i - 1`` and the first 64 samples of block ``i`` (none for block 0): the timing
of sherpa-onnx's detector, which the endpointer was tuned on (32 ms earlier decisions changed
pocketsphinx's "thirty" into "thirty eight" in an end-to-end test)."""
MODEL_INPUT_SAMPLES: Final = WINDOW_SAMPLES + OVERLAP_SAMPLES
STATE_SHAPE: Final = (2, 1, 128)
HYSTERESIS: Final = 0.15
"""Speech continues while the probability stays above ``threshold - HYSTERESIS``."""
KNOWN_MODELS: Final = {
    # sha256 -> size in bytes; the pinned silero_vad.onnx v5 (make setup)
    "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3": 2_327_524,
}
_INPUTS: Final = ("input", "state", "sr")


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


MAX_BATCH: Final = 64
"""Windows run in one model call at most."""


@dataclass(slots=True)
class _Step:
    """One stream's next window, waiting for its turn in a batch."""

    window: np.ndarray
    """[1, 576] float32: the 512-sample window and the first 64 samples of the next."""
    state: np.ndarray
    """[2, 1, 128] recurrent state before the window."""
    prob: float = 0.0
    next_state: np.ndarray | None = None
    error: BaseException | None = None
    done: bool = False


class _Batches:
    """Runs the windows that streams submit concurrently (from the executor's threads) as one
    batch. No thread waits for a batch to fill: the first caller that finds no batch running
    runs everything queued so far, so a lone window runs at once and windows that arrive while
    a batch runs go together in the next one. Thread-safe."""

    def __init__(self, session: Any, sample_rate: np.ndarray) -> None:
        self._session = session
        self._sample_rate = sample_rate
        self._cond = threading.Condition()
        self._queue: list[_Step] = []
        self._running = False

    def run_steps(self, steps: list[_Step]) -> None:
        """Fill in each step's probability and next state (windows of different streams);
        blocks until all have run. Raises the model's error if their batch failed."""
        with self._cond:
            self._queue.extend(steps)
        while True:
            with self._cond:
                while self._running and not all(s.done for s in steps):
                    self._cond.wait()
                if all(s.done for s in steps):
                    break
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                self._running = True
            try:
                self._infer(batch)
            finally:
                with self._cond:
                    self._running = False
                    self._cond.notify_all()
        for step in steps:
            if step.error is not None:
                raise step.error

    def _infer(self, batch: list[_Step]) -> None:
        try:
            feeds = {
                "input": np.concatenate([s.window for s in batch]),
                "state": np.concatenate([s.state for s in batch], axis=1),
                "sr": self._sample_rate,
            }
            prob, state = self._session.run(None, feeds)
            for i, step in enumerate(batch):
                step.prob, step.next_state = float(prob[i, 0]), state[:, i : i + 1, :]
        except Exception as exc:  # onnxruntime's own errors: every waiter raises it
            for step in batch:
                step.error = exc
        for step in batch:
            step.done = True


def gate_level(dbfs: float | None) -> int:
    """Peak |sample| (int16) below which a window is silence unseen; 0 when the gate is off."""
    return 0 if dbfs is None else int(32768 * 10 ** (dbfs / 20))


class SileroVadStream:
    """Per-session VAD: feed 16 kHz PCM, get one decision per 32 ms window. Not thread-safe
    (one caller at a time, as the session's speech-in worker calls it)."""

    def __init__(self, provider: SileroVad) -> None:
        self._provider = provider
        self._closed = False
        self._pending = np.zeros(0, dtype=np.int16)
        self._previous: np.ndarray | None = None
        """The last whole 512-sample block (the model reads it with the next one's start)."""
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._speaking = False
        self._onset = False
        """One window above the threshold seen while not speaking (a second one starts it)."""
        self._offset = False
        """One window below the lower threshold seen while speaking (a second one ends it)."""
        self.windows_run = 0
        """Windows the model ran on (the rest were gated as silence); for tests and benches."""

    @property
    def window_ms(self) -> float:
        return WINDOW_SAMPLES * 1000 / SAMPLE_RATE_HZ

    def accept(self, pcm: Pcm) -> list[bool]:
        return self._provider.accept_many([(self, pcm)])[0]

    def _windows(self, pcm: Pcm) -> list[np.ndarray | None]:
        """Take ``pcm`` into the stream: the model input of each whole 512-sample block it
        completes (None for a block with no block before it: the decision stays as it is)."""
        if self._closed:
            raise RuntimeError("VAD stream is closed")
        samples = np.asarray(pcm, dtype=np.int16)
        buf = np.concatenate((self._pending, samples)) if self._pending.size else samples
        windows: list[np.ndarray | None] = []
        n_blocks = len(buf) // WINDOW_SAMPLES
        for i in range(n_blocks):
            block = buf[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES]
            previous, self._previous = self._previous, block
            windows.append(
                None if previous is None else np.concatenate((previous, block[:OVERLAP_SAMPLES]))
            )
        self._pending = buf[n_blocks * WINDOW_SAMPLES :].copy()
        if self._previous is not None:
            self._previous = self._previous.copy()  # not a view of the caller's array
        return windows

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.int16)
        self._previous = None
        self._forget()
        self._speaking = self._onset = self._offset = False

    def close(self) -> None:
        """Nothing to give back (the model is shared); later calls to accept raise."""
        self._closed = True

    def _forget(self) -> None:
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)

    def _gated(self, window: np.ndarray) -> bool:
        """True (and the model starts afresh) when the window is below the silence gate."""
        gate = self._provider.gate
        if gate and int(np.abs(window.astype(np.int32)).max()) < gate:
            self._forget()
            return True
        return False

    def _decide(self, prob: float) -> bool:
        threshold = self._provider.threshold
        if not self._speaking:
            if prob > threshold and self._onset:
                self._speaking, self._onset, self._offset = True, False, False
                return True
            self._onset = prob > threshold
            return False
        if prob > threshold:
            self._offset = False
            return True
        if prob > threshold - HYSTERESIS:
            return True
        if not self._offset:
            self._offset = True
            return True
        self._speaking = self._onset = self._offset = False
        return False


class SileroVad:
    """The VAD provider (registry name ``silero``); one model shared by all sessions."""

    name = "silero"

    def __init__(self, settings: VadSettings) -> None:
        path = Path(settings.model_path)
        check_model_file(path)
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise ProviderUnavailable(
                f"onnxruntime is not installed ({exc}); run `make setup`"
            ) from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one window is tiny; sessions run in parallel instead
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ProviderUnavailable(f"silero VAD model {path} does not load: {exc}") from exc
        names = tuple(i.name for i in self._session.get_inputs())
        if names != _INPUTS:
            raise ProviderUnavailable(
                f"silero VAD model {path} has inputs {names}, expected {_INPUTS} (silero v5)"
            )
        self.threshold = settings.threshold
        self.gate = gate_level(settings.silence_gate_dbfs)
        self.batches = _Batches(self._session, np.array(SAMPLE_RATE_HZ, dtype=np.int64))
        self.create_stream().accept(np.full(WINDOW_SAMPLES, 1000, dtype=np.int16))  # warm up

    def create_stream(self) -> SileroVadStream:
        return SileroVadStream(self)

    def accept_many(self, items: Sequence[tuple[SileroVadStream, Pcm]]) -> list[list[bool]]:
        """:meth:`SileroVadStream.accept` for several streams (each once) at the same time:
        their n-th windows run as one batch, so a caller that has audio of many sessions (the
        speech-in batcher) pays about one model call per window position instead of one per
        stream. The decisions are those of each stream alone."""
        streams = [stream for stream, _ in items]
        if len({id(s) for s in streams}) != len(streams):
            raise ValueError("a VAD stream appears twice in one accept_many call")
        plans = [stream._windows(pcm) for stream, pcm in items]
        decisions: list[list[bool]] = [[] for _ in items]
        for position in range(max(map(len, plans), default=0)):
            steps: list[_Step] = []
            owners: list[int] = []
            for i, (stream, plan) in enumerate(zip(streams, plans, strict=True)):
                if position >= len(plan):
                    continue
                window = plan[position]
                if window is None:
                    decisions[i].append(stream._speaking)
                elif stream._gated(window):
                    decisions[i].append(stream._decide(0.0))
                else:
                    frame = (window.astype(np.float32) * (1 / 32768)).reshape(
                        1, MODEL_INPUT_SAMPLES
                    )
                    steps.append(_Step(frame, stream._state))
                    owners.append(i)
            if not steps:
                continue
            self.batches.run_steps(steps)
            for i, step in zip(owners, steps, strict=True):
                stream = streams[i]
                assert step.next_state is not None
                stream._state = step.next_state
                stream.windows_run += 1
                decisions[i].append(stream._decide(step.prob))
        return decisions


def create(settings: VadSettings) -> SileroVad:
    return SileroVad(settings)
