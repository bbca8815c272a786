"""Cross-connection batching: streams of all connections decoded together in one model call.

Only engines with a batch API batch. sherpa-onnx's ``OnlineRecognizer.decode_streams`` does:
:class:`SherpaBatcher` runs one decoding thread that gathers every stream ready to decode and
decodes them in one call, waiting at most ``wait_ms`` (≤ 10 ms by default) for more to arrive
once the first is in — and not at all when every stream in a feed step is already waiting.
pocketsphinx has no batch API (one decoder per utterance, each call holds the GIL), and
faster-whisper is a final-only batch recogniser per utterance: both run unbatched, as before.

A batched stream's ``accept`` blocks its thread until its batch is decoded, so the transcription
steps of batched streams run on their own thread pool (:attr:`BatchingSetup.executor`, one
thread per admitted stream, mostly waiting); the model runs on the single batch thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from server.providers.asr.sherpa import SherpaOnnxAsr, SherpaOnnxStream
from server.providers.base import AsrCapabilities, AsrProvider

logger = logging.getLogger(__name__)

MAX_BATCH: Final = 64


class SherpaBatcher:
    """One thread decoding batches of sherpa-onnx online streams."""

    def __init__(self, recognizer: Any, *, wait_ms: float = 10.0, max_batch: int = MAX_BATCH):
        self._recognizer = recognizer
        self._wait_s = wait_ms / 1000
        self._max = max_batch
        self._cond = threading.Condition()
        self._pending: list[tuple[Any, threading.Event]] = []
        self._inflight = 0
        self._closed = False
        self.batches = 0
        self.decoded = 0
        self._thread = threading.Thread(target=self._run, name="sherpa-batch", daemon=True)
        self._thread.start()

    def enter(self) -> None:
        """A stream started a feed step (it may ask to decode soon)."""
        with self._cond:
            self._inflight += 1

    def leave(self) -> None:
        with self._cond:
            self._inflight -= 1
            self._cond.notify_all()

    def decode(self, stream: Any) -> None:
        """Block until ``stream`` was decoded once (in a batch with others)."""
        done = threading.Event()
        with self._cond:
            if self._closed:
                raise RuntimeError("batcher closed")
            self._pending.append((stream, done))
            self._cond.notify_all()
        done.wait()

    @property
    def mean_batch(self) -> float:
        return self.decoded / self.batches if self.batches else 0.0

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed and not self._pending:
                    return
                deadline = time.monotonic() + self._wait_s
                while len(self._pending) < min(self._inflight, self._max) and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch, self._pending = self._pending[: self._max], self._pending[self._max :]
            try:
                self._recognizer.decode_streams([s for s, _ in batch])
            except Exception:
                logger.exception("batched decode failed")
            finally:
                self.batches += 1
                self.decoded += len(batch)
                for _, done in batch:
                    done.set()


class BatchedSherpaStream(SherpaOnnxStream):
    """A sherpa-onnx stream whose decode steps go through the shared batcher."""

    def __init__(self, provider: SherpaOnnxAsr, batcher: SherpaBatcher) -> None:
        super().__init__(provider)
        self._batcher = batcher

    def _decode(self) -> str:
        online = self._provider.online
        self._batcher.enter()
        try:
            while online.is_ready(self._stream):
                self._batcher.decode(self._stream)
        finally:
            self._batcher.leave()
        return " ".join(str(online.get_result(self._stream)).split())


class BatchedSherpaAsr:
    """The sherpa provider, its streams decoded in batches (same name and capabilities)."""

    def __init__(self, inner: SherpaOnnxAsr, batcher: SherpaBatcher) -> None:
        self.inner = inner
        self.batcher = batcher
        self.name = inner.name
        self.sample_rate_hz = inner.sample_rate_hz
        self.capabilities: AsrCapabilities = inner.capabilities

    def create_stream(self, phrases: Sequence[str] | None = None) -> BatchedSherpaStream:
        return BatchedSherpaStream(self.inner, self.batcher)


@dataclass
class BatchingSetup:
    provider: AsrProvider
    batcher: SherpaBatcher
    executor: ThreadPoolExecutor

    def close(self) -> None:
        self.batcher.close()
        self.executor.shutdown(wait=False, cancel_futures=True)


def batching_provider(asr: AsrProvider, *, wait_ms: float, streams: int) -> BatchingSetup | None:
    """A batching wrapper of ``asr`` when its engine can batch (sherpa-onnx), else None."""
    inner = getattr(asr, "inner", asr)  # a retry/metrics wrapper may hold the provider
    if not isinstance(inner, SherpaOnnxAsr) or not hasattr(inner.online, "decode_streams"):
        return None
    batcher = SherpaBatcher(inner.online, wait_ms=wait_ms)
    executor = ThreadPoolExecutor(max_workers=streams, thread_name_prefix="transcribe")
    logger.info("transcription: sherpa-onnx streams decoded in batches (wait ≤ %.0f ms)", wait_ms)
    return BatchingSetup(BatchedSherpaAsr(inner, batcher), batcher, executor)
