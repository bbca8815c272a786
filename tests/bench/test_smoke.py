"""Smoke: quick benchmark runs through the CLI produce their JSON keys (no timing asserts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import cli

pytestmark = pytest.mark.e2e  # runs a real server subprocess and simulated devices


def test_cli_quick_writes_json(tmp_path: Path) -> None:
    assert cli.main(["idle", "codec", "--quick", "--results", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "idle.json").read_text())
    assert data["quick"] is True and data["runs_done"] == 1 and len(data["runs"]) == 1
    idle = data["runs"][0]
    assert idle["idle"]["held"] == 100 and idle["idle"]["errors"] == 0
    assert idle["idle"]["rss_per_conn_kib"] is not None
    assert idle["burst"]["n"] == 50 and idle["burst"]["hello_ms"]["n"] == 50
    assert {r["metric"] for r in idle["rows"]} >= {
        "idle connections held",
        "RSS per idle conn (KiB)",
    }
    assert all(r["result"] in {"pass", "MISS", "n/a"} for r in idle["rows"])
    assert data["summary"]["held"]["median"] == 100
    assert data["engines"]["asr"] and len(idle["load"]["loadavg_start"]) == 3
    codec = json.loads((tmp_path / "codec.json").read_text())
    assert codec["benchmark"] == "codec" and codec["runs"][0]["rows"]
    assert codec["summary"]["decode_24k.ratio"]["median"] > 0


def test_capacity_reports_the_load_generator_beside_the_server(tmp_path: Path) -> None:
    assert cli.main(["capacity", "--quick", "--results", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "capacity.json").read_text())
    assert data["engines"]["asr"].startswith("pocketsphinx") and data["engines"]["tts"]
    rows = [r for r in data["runs"][0]["rows"] if isinstance(r["n"], int)]
    assert rows and all(r["client_cpu_pct"] is not None and r["cpu_pct"] for r in rows)
    assert data["summary"]["n1.client_cpu_pct"]["median"] is not None
    load = data["runs"][0]["load"]
    assert load["ours_cpu_s"] > 0 and load["others_cpu_s"] >= 0


def test_unknown_benchmark_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["nonesuch"])
    assert exc.value.code == 2
    assert "unknown benchmark 'nonesuch'" in capsys.readouterr().err
