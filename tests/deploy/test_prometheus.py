"""The shipped Prometheus files: promtool accepts the config and the rules, the rules' unit tests
(deploy/prometheus/alerts_test.yml: each alert fired from synthetic series, and held back under
its threshold) pass, and every series the rules read is one the server really exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from server.metrics import STAGES, ServerMetrics

pytestmark = pytest.mark.e2e  # promtool subprocesses

DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
ALERTS = ("XiaozhiActiveConnectionsHigh", "XiaozhiAsrLatencyHigh", "XiaozhiErrorRateHigh",
          "XiaozhiFirstAudioP95High", "XiaozhiWorkerDown")  # fmt: skip


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool not found: run make setup (apt-get install prometheus)"
    return subprocess.run([binary, *args], cwd=DIR, capture_output=True, text=True, timeout=60)


def test_promtool_checks_the_config_and_the_rules() -> None:
    for args in (("check", "rules", "alerts.yml"), ("check", "config", "prometheus.yml")):
        result = promtool(*args)
        assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_fire_each_alert() -> None:
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr
    tests = yaml.safe_load((DIR / "alerts_test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    held = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if not case["exp_alerts"]
    }
    assert fired == held == set(ALERTS)


def test_a_broken_unit_test_is_caught(tmp_path: Path) -> None:
    """promtool really evaluates: a wrong expectation fails."""
    text = (DIR / "alerts_test.yml").read_text().replace("1001 open device", "999 open device")
    (tmp_path / "alerts.yml").write_text((DIR / "alerts.yml").read_text())
    (tmp_path / "bad_test.yml").write_text(text)
    binary = shutil.which("promtool")
    assert binary
    result = subprocess.run([binary, "test", "rules", "bad_test.yml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode != 0


@pytest.mark.parametrize("alert", ALERTS)
def test_every_series_an_alert_reads_is_exported(alert: str) -> None:
    metrics = ServerMetrics()
    metrics.turn_completed()
    metrics.error("asr-failed")
    for stage in STAGES:
        metrics.observe_stage(stage, 0.1)
    exported = metrics.render().decode()
    names = {line.split("{")[0].split()[0] for line in exported.splitlines() if line[:1] != "#"}
    rules = yaml.safe_load((DIR / "alerts.yml").read_text())["groups"][0]["rules"]
    (rule,) = [r for r in rules if r["alert"] == alert]
    used = set(re.findall(r"\b(xiaozhi_[a-z_]+)", rule["expr"]))
    assert used <= names, used - names
    for stage in re.findall(r'stage="([a-z_]+)"', rule["expr"]):
        assert stage in STAGES


def test_the_grafana_dashboard_reads_exported_series_and_every_ledger_stage() -> None:
    import json

    dashboard = json.loads((DIR.parent / "grafana" / "xiaozhi-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    metrics = ServerMetrics()
    metrics.turn_completed()
    metrics.error("asr-failed")
    metrics.frame_dropped("late")
    metrics.observe_stage("first_audio", 0.1)
    exported = {
        line.split("{")[0].split()[0]
        for line in metrics.render().decode().splitlines()
        if line[:1] != "#"
    }
    for expr in exprs:
        used = set(re.findall(r"\b((?:xiaozhi|process)_[a-z_]+)", expr))
        assert used <= exported, (expr, used - exported)
    assert all(stage in exprs[0] for stage in STAGES)
