"""``xiaozhi-bench --runs N``: repeated runs taking turns, summaries, the machine's load.

The benchmarks are replaced by fakes: no server is started.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from bench import cli, stats


def test_over_runs_median_min_max_skip_missing() -> None:
    s = stats.over_runs([{"a": 3.0, "b": None}, {"a": 1.0}, {"a": 2.0, "b": 5.0}])
    assert s["a"] == {"median": 2.0, "min": 1.0, "max": 3.0, "runs": 3, "values": [3.0, 1.0, 2.0]}
    assert s["b"]["median"] == 5.0 and s["b"]["runs"] == 1 and s["b"]["values"] == [None, None, 5.0]


def test_load_meter_reports_the_machine_and_other_processes() -> None:
    meter = stats.LoadMeter()
    sum(i * i for i in range(200_000))  # some CPU of ours
    load = meter.stop()
    assert len(load["loadavg_start"]) == 3 and len(load["loadavg_end"]) == 3
    assert load["ours_cpu_s"] >= 0 and load["wall_s"] >= 0
    if os.path.exists("/proc/stat"):
        assert load["others_cpu_s"] >= 0 and load["machine_busy_cpu_s"] >= 0
        assert "steal_s" in load and "others_cpu_pct" in load


def test_machine_names_cores_memory_and_os() -> None:
    m = stats.machine()
    assert m["cpus"] == os.cpu_count() and m["python"] and m["os"]


def test_descendants_are_counted_as_ours() -> None:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "sum(i*i for i in range(3_000_000))"])
    before = stats.ours_cpu_s()
    child.wait()
    assert stats.ours_cpu_s() >= before  # the child's CPU moved to RUSAGE_CHILDREN, not lost


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def runner(name: str) -> Any:
        def run(quick: bool) -> dict[str, Any]:
            calls.append(name)
            if name == "codec" and calls.count("codec") == 2:
                raise RuntimeError("second codec run broke")
            k = calls.count(name)
            rows = [{"rate_hz": 16000, "op": "encode", "ratio": 0.9 + k / 100}]
            return {"rows": rows if name == "codec" else [], "quick": quick}

        return run

    monkeypatch.setattr(cli, "_benchmarks", lambda: {n: runner(n) for n in cli.NAMES})
    return calls


def test_runs_take_turns_and_every_run_is_kept(fake: list[str], tmp_path: Path) -> None:
    assert cli.main(["codec", "idle", "--runs", "3", "--results", str(tmp_path)]) == 1  # one failed
    assert fake == ["codec", "idle"] * 3
    codec = json.loads((tmp_path / "codec.json").read_text())
    assert codec["runs_requested"] == 3 and codec["runs_done"] == 2 and len(codec["runs"]) == 3
    assert codec["runs"][1]["failed"] == "RuntimeError: second codec run broke"
    assert codec["summary"]["encode_16k.ratio"]["values"] == [0.91, 0.93]
    assert all("loadavg_start" in r["load"] for r in codec["runs"])
    assert codec["machine"]["cpus"] == os.cpu_count() and codec["quick"] is False


def test_quick_is_one_run_unless_told(fake: list[str], tmp_path: Path) -> None:
    assert cli.main(["idle", "--quick", "--results", str(tmp_path)]) == 0
    assert fake == ["idle"]
    assert cli.main(["idle", "--quick", "--runs", "2", "--results", str(tmp_path)]) == 0
    assert fake == ["idle"] * 3


def test_default_set_leaves_out_the_opt_in_benchmarks(fake: list[str], tmp_path: Path) -> None:
    assert cli.main(["--runs", "1", "--results", str(tmp_path)]) == 0
    assert set(fake) == set(cli.NAMES) - set(cli.OPT_IN)
    fake.clear()
    cli.main(["--runs", "1", "--lm", "--results", str(tmp_path)])
    assert "capacity_lm" in fake and "accuracy" not in fake


def test_runs_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["codec", "--runs", "0"])
    assert "--runs must be at least 1" in capsys.readouterr().err
