"""/healthz, /metrics, ServerMetrics and board_urls."""

from __future__ import annotations

import aiohttp

from server.config import OtaSettings, Settings
from server.http import board_urls
from server.metrics import STAGES, ServerMetrics

METRIC_NAMES = (
    "xiaozhi_connections",
    "xiaozhi_turns_total",
    "xiaozhi_errors_total",
    "xiaozhi_frames_dropped_total",
    "xiaozhi_stage_latency_seconds_bucket",
)


async def test_healthz_and_metrics_endpoints(server) -> None:
    async with server(health=lambda: {"status": "ok", "sessions": 2}) as running:
        running.metrics.connection_opened()
        running.metrics.turn_completed()
        running.metrics.error("asr_failed")
        running.metrics.frame_dropped("queue_full", 3)
        running.metrics.observe_stage("first_audio", 0.42)
        base = f"http://127.0.0.1:{running.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/healthz") as response:
                assert response.status == 200
                assert await response.json() == {"status": "ok", "sessions": 2}
            async with http.get(base + "/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                text = await response.text()
    for name in METRIC_NAMES:
        assert name in text
    assert "xiaozhi_connections 1.0" in text
    assert 'xiaozhi_errors_total{code="asr_failed"} 1.0' in text
    assert 'xiaozhi_frames_dropped_total{reason="queue_full"} 3.0' in text
    assert 'xiaozhi_stage_latency_seconds_count{stage="first_audio"} 1.0' in text
    assert 'xiaozhi_stage_latency_seconds_bucket{le="0.5",stage="first_audio"} 1.0' in text


async def test_failing_health_callable_gives_503(server) -> None:
    def broken() -> dict[str, object]:
        raise RuntimeError("pipeline down")

    async with (
        server(health=broken) as running,
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{running.port}/healthz") as response,
    ):
        assert response.status == 503
        assert "pipeline down" in (await response.json())["error"]


def test_metrics_instances_are_independent() -> None:
    first, second = ServerMetrics(), ServerMetrics()  # no duplicate-registration error
    first.connection_opened()
    first.connection_closed()
    first.connection_closed()  # unmatched close is ignored, never negative
    second.connection_opened()
    assert (first.connections, second.connections) == (0, 1)
    first.observe_stage("endpoint", -0.1)  # clock skew: ignored
    text = first.render().decode()
    assert 'xiaozhi_stage_latency_seconds_count{stage="endpoint"} 0.0' in text
    for stage in STAGES:
        assert f'stage="{stage}"' in text


def test_board_urls_wildcard_and_specific_host() -> None:
    lines = board_urls(Settings(), websocket_port=8000, http_port=8003)
    assert any(
        "http://127.0.0.1:8003/xiaozhi/ota/" in line and "ws://127.0.0.1:8000/xiaozhi/v1/" in line
        for line in lines
    )
    assert lines[-1].startswith("OTA URL http://127.0.0.1:")  # LAN addresses first

    settings = Settings(ota=OtaSettings(host="192.168.1.10", path="/ota"))
    assert board_urls(settings, websocket_port=9000, http_port=80) == [
        "OTA URL http://192.168.1.10:80/ota/  ->  WebSocket ws://192.168.1.10:9000/xiaozhi/v1/"
    ]


async def test_metrics_have_process_series_and_no_created(server) -> None:
    async with (
        server() as running,
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{running.port}/metrics") as response,
    ):
        running.metrics.turn_completed()
        text = await response.text()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "python_info"):
        assert name in names
    assert "python_gc_collections_total" in names
    assert not [n for n in names if n.endswith("_created")]
    assert "xiaozhi_turns_total" in names


async def test_scrapes_are_logged_at_debug_other_requests_at_info(server, caplog) -> None:
    import logging

    async with server() as running, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{running.port}"
        with caplog.at_level(logging.DEBUG, logger="server.http.access"):
            for path in ("/metrics", "/healthz", "/"):
                async with http.get(base + path) as response:
                    await response.read()
    levels = {
        r.getMessage().split(" ")[1]: r.levelno for r in caplog.records if r.name.endswith("access")
    }
    assert levels == {"/metrics": logging.DEBUG, "/healthz": logging.DEBUG, "/": logging.INFO}
