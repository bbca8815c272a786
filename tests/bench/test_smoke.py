"""Smoke: quick benchmark runs through the CLI produce their JSON keys (no timing asserts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import cli, stats

pytestmark = pytest.mark.e2e  # runs a real server subprocess and simulated devices


def test_cli_quick_writes_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def write(name: str, data: dict[str, Any]) -> Path:
        return stats.write_result(name, data, tmp_path)

    monkeypatch.setattr(cli, "write_result", write)
    assert cli.main(["idle", "codec", "--quick"]) == 0
    idle = json.loads((tmp_path / "idle.json").read_text())
    assert idle["idle"]["held"] == 100 and idle["idle"]["errors"] == 0
    assert idle["idle"]["rss_per_conn_kib"] is not None
    assert idle["burst"]["n"] == 50 and idle["burst"]["hello_ms"]["n"] == 50
    assert {r["metric"] for r in idle["rows"]} >= {
        "idle connections held",
        "RSS per idle conn (KiB)",
    }
    assert all(r["result"] in {"pass", "MISS", "n/a"} for r in idle["rows"])
    codec = json.loads((tmp_path / "codec.json").read_text())
    assert codec["benchmark"] == "codec" and codec["rows"]


def test_unknown_benchmark_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["nonesuch"])
    assert exc.value.code == 2
    assert "unknown benchmark 'nonesuch'" in capsys.readouterr().err
