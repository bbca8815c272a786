"""Prometheus metrics of one server instance, on a private registry (no global state).

Times are in seconds. ``render()`` returns the Prometheus text exposition format, with the
standard ``process_*`` (CPU, memory, file descriptors) and ``python_*`` (version, garbage
collector) series and without the ``*_created`` timestamp series (one per counter otherwise, noise
for a dashboard).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

logger = logging.getLogger(__name__)

STAGES: Final[tuple[str, ...]] = (
    "vad_hangover",
    "asr_finalise",
    "dialogue_first_token",
    "first_sentence_synthesised",
    "first_frame_sent",
    "last_frame_sent",
    "endpoint",
    "first_audio",
)
"""Latency stages (label values of ``xiaozhi_stage_latency_seconds``); see
:meth:`server.session.ledger.TurnLedger.durations`."""

LATENCY_BUCKETS_S: Final[tuple[float, ...]] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    7.5,
    10.0,
)

RECENT_TURNS: Final = 50
"""Completed turns kept for the dashboard (``ServerMetrics.recent_turns``)."""

CONTENT_TYPE: Final[str] = CONTENT_TYPE_LATEST
"""HTTP Content-Type of :meth:`ServerMetrics.render` output."""


class ServerMetrics:
    """Connection, turn, error, dropped-frame and stage-latency metrics.

    Each instance owns its own ``CollectorRegistry``, so several servers (tests) can coexist.
    """

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # process-wide, idempotent
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._plain_http = Counter(
            "xiaozhi_plain_http_on_websocket_port",
            "Plain HTTP requests on the WebSocket port (a board's OTA URL pointed at it?)",
            registry=self.registry,
        )
        self._connections = Gauge(
            "xiaozhi_connections", "Open WebSocket sessions", registry=self.registry
        )
        self._turns = Counter("xiaozhi_turns", "Completed dialogue turns", registry=self.registry)
        self._errors = Counter("xiaozhi_errors", "Errors by code", ["code"], registry=self.registry)
        self._dropped = Counter(
            "xiaozhi_frames_dropped",
            "Audio frames dropped, by reason",
            ["reason"],
            registry=self.registry,
        )
        self._tts_cache = Counter(
            "xiaozhi_tts_cache",
            "Reply sentences looked up in the spoken-sentence cache, by result (hit, miss)",
            ["result"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "xiaozhi_stage_latency_seconds",
            "Latency of one turn stage in seconds",
            ["stage"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self._open = 0
        self.recent_turns: deque[dict[str, object]] = deque(maxlen=RECENT_TURNS)
        """The last turns' stage durations (s), newest last: the dashboard's breakdown chart."""
        for stage in STAGES:  # expose every stage with zero counts from the start
            self._latency.labels(stage=stage)

    def connection_opened(self) -> None:
        """A WebSocket session started."""
        self._open += 1
        self._connections.inc()

    def connection_closed(self) -> None:
        """A WebSocket session ended."""
        if self._open <= 0:
            logger.warning("connection_closed() without a matching connection_opened()")
            return
        self._open -= 1
        self._connections.dec()

    def turn_completed(self) -> None:
        """One dialogue turn finished (``xiaozhi_turns_total``)."""
        self._turns.inc()

    def tts_cache(self, *, hit: bool) -> None:
        """One sentence looked up in the reply cache (``xiaozhi_tts_cache_total``)."""
        self._tts_cache.labels(result="hit" if hit else "miss").inc()

    def error(self, code: str) -> None:
        """Count one error with its code (e.g. a ``ProtocolError.code``)."""
        self._errors.labels(code=str(code)).inc()

    def watch_degraded(self, degraded: Callable[[], bool]) -> None:
        """Expose ``xiaozhi_degraded`` (1 while a fallback answers, as ``/healthz`` says)."""
        gauge = Gauge(
            "xiaozhi_degraded",
            "1 while a provider is failing and a fallback answers (see /healthz)",
            registry=self.registry,
        )
        gauge.set_function(lambda: 1.0 if degraded() else 0.0)

    def watch_event_loop_tasks(self, count: Callable[[], int]) -> None:
        """Expose ``xiaozhi_event_loop_tasks`` (asyncio tasks alive now; a leak shows as growth)."""
        gauge = Gauge(
            "xiaozhi_event_loop_tasks",
            "asyncio tasks alive in the server's event loop",
            registry=self.registry,
        )
        gauge.set_function(lambda: float(count()))

    def watch_asr_queue(self, depth: Callable[[], int]) -> None:
        """Expose ``xiaozhi_asr_queue_depth`` (utterances waiting for the slow recogniser,
        Whisper, to start on them; one refused after ``asr.whisper.max_queue_wait_s`` counts in
        ``xiaozhi_errors_total{code="asr-queue-timeout"}``)."""
        gauge = Gauge(
            "xiaozhi_asr_queue_depth",
            "Utterances waiting for Whisper to start decoding them (the one decoding excluded)",
            registry=self.registry,
        )
        gauge.set_function(lambda: float(depth()))

    def plain_http_on_websocket_port(self) -> None:
        """A plain HTTP request reached the WebSocket port (it was told where OTA lives)."""
        self._plain_http.inc()

    def frame_dropped(self, reason: str, count: int = 1) -> None:
        """Count ``count`` dropped audio frames."""
        if count > 0:
            self._dropped.labels(reason=reason).inc(count)

    def observe_stage(self, stage: str, seconds: float) -> None:
        """Record one stage latency in seconds; negative values are ignored (clock skew)."""
        if seconds < 0:
            logger.debug("ignoring negative latency %.4f s for stage %s", seconds, stage)
            return
        self._latency.labels(stage=stage).observe(seconds)

    def turn_observed(self, turn_id: int, durations: dict[str, float]) -> None:
        """Keep one completed turn's stage durations (s) for the dashboard (a bounded ring)."""
        self.recent_turns.append({"turn_id": turn_id, "at": time.time(), "stages": dict(durations)})

    @property
    def connections(self) -> int:
        """Current number of open sessions."""
        return self._open

    def render(self) -> bytes:
        """The Prometheus text exposition of all metrics."""
        return generate_latest(self.registry)
