"""``/api/dashboard`` and ``/api/pages`` without a browser (fast)."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import make_mocked_request

from server.config import load_settings
from server.devices import DeviceRegistry
from server.http.dashboard import dashboard_json
from server.http.pages import PAGES, STATIC_DIR, pages_config
from server.metrics import ServerMetrics
from server.session.ledger import TurnLedger


async def test_dashboard_counts_turns_stages_errors_and_devices(tmp_path: Path) -> None:
    metrics = ServerMetrics()
    ledger = TurnLedger(7)
    for stage, at in [("speech_end", 1.0), ("speech_end_detected", 1.3), ("asr_final", 1.4),
                      ("first_sentence_synthesised", 1.6), ("first_frame_sent", 1.65)]:  # fmt: skip
        ledger.mark(stage, at)
    ledger.observe(metrics)
    metrics.turn_completed()
    metrics.error("tts-failed")
    metrics.error("tts-failed")
    registry = DeviceRegistry(tmp_path / "devices.sqlite3")
    await registry.seen("aa:bb", "uuid-1", "browser-board", "2.4.2", None)
    try:
        data = await dashboard_json(metrics, registry, lambda: {"status": "ok", "sessions": 0})
    finally:
        await registry.close()
    assert data["turns"] == 1 and data["errors"] == {"tts-failed": 2}
    assert [d["device_id"] for d in data["devices"]] == ["aa:bb"]
    turn = data["recent_turns"][-1]
    assert turn["turn_id"] == 7 and abs(turn["stages"]["first_audio"] - 0.65) < 1e-9
    latency = data["latency"]
    assert latency["count"] == 1 and sum(b["count"] for b in latency["buckets"]) == 1
    hit = next(b for b in latency["buckets"] if b["count"])
    assert hit["le"] == 0.75  # 0.65 s lands in the (0.5, 0.75] bucket


async def test_dashboard_survives_a_failing_health_callable(tmp_path: Path) -> None:
    def broken() -> dict[str, object]:
        raise RuntimeError("boom")

    registry = DeviceRegistry(tmp_path / "devices.sqlite3")
    try:
        data = await dashboard_json(ServerMetrics(), registry, broken)
    finally:
        await registry.close()
    assert data["status"] == "error" and data["recent_turns"] == []


def test_pages_config_names_the_websocket_port_and_scheme() -> None:
    settings = load_settings()
    request = make_mocked_request("GET", "/api/pages", headers={"Host": "box.local:8003"})
    config = pages_config(settings, request, 8000)
    assert config["ws_base"] == "ws://box.local:8000"
    assert config["assistant_path"] == settings.websocket.path
    assert all((STATIC_DIR / name).is_file() for name in PAGES.values())
