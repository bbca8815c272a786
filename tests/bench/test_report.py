"""The README's benchmark tables are generated from bench/results/*.json and can never drift.

Like docs/configuration.md (tests/docs/test_docs.py): the blocks between ``<!-- bench:NAME -->``
markers in README.md must equal what ``xiaozhi-bench report`` prints from the committed result
files. No server is started.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import cli, report
from bench.figures import EXTRACT, of_run
from bench.stats import RESULTS_DIR

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_blocks_equal_the_generator_output() -> None:
    text = README.read_text(encoding="utf-8")
    current = report.blocks_in(text)
    assert set(current) == set(report.BLOCKS), "README lost a <!-- bench:… --> block"
    for name, body in report.render(RESULTS_DIR).items():
        assert current[name] == body, (
            f"README block {name!r} is out of date: run xiaozhi-bench report --write"
        )


def test_check_mode_passes_on_the_committed_readme() -> None:
    assert report.main(["--check"]) == 0


def test_every_committed_result_file_has_figures() -> None:
    for name, result in report.load(RESULTS_DIR).items():
        if name in EXTRACT:
            assert result.summary, f"bench/results/{name}.json gives no figures"


def _latency_run(p50: float, p95: float, load: float = 0.5) -> dict[str, Any]:
    return {
        "figures": {
            "endpoint_ms": {"n": 16, "p50": p50 - 40, "p95": p95 - 40},
            "first_audio_ms": {"n": 16, "p50": p50 + 200, "p95": p95 + 400},
            "first_audio_ms_grammar": {"n": 8, "p50": p50, "p95": p95},
            "stale_frames": 0,
        },
        "server": {"cpu_pct": 3.0},
        "client": {"cpu_pct": 1.5},
        "engines": {"asr": "pocketsphinx grammar", "tts": "flite"},
        "load": {
            "loadavg_start": [load, 0.4, 0.3],
            "loadavg_end": [load + 0.1, 0.4, 0.3],
            "others_cpu_pct": 2.0,
            "wall_s": 60.0,
        },
    }


def _write(tmp: Path, name: str, data: dict[str, Any]) -> None:
    payload = {"benchmark": name, "time": "2026-12-02T10:00:00Z", "machine": {"cpus": 2}, **data}
    (tmp / f"{name}.json").write_text(json.dumps(payload))


def test_rows_show_median_range_target_and_runs(tmp_path: Path) -> None:
    runs = [_latency_run(340, 400), _latency_run(480, 460), _latency_run(320, 440)]
    _write(tmp_path, "latency", cli.payload("latency", runs, 3, quick=False))
    body = report.render(tmp_path)["performance"]
    row = next(line for line in body.splitlines() if "`first_audio_ms` P50, command" in line)
    assert "| 340 | 320–480 | ≤ 350: met in 2 of 3 runs | 3 runs, 2026-12-02, A |" in row
    p95 = next(line for line in body.splitlines() if "`first_audio_ms` P95, command" in line)
    assert "| 440 | 400–460 | ≤ 450: met in 2 of 3 runs |" in p95
    assert "**A**: asr pocketsphinx grammar; tts flite" in body
    assert "`latency` 2026-12-02: 3 runs, load average 0.50–0.60" in body
    assert "other processes 2 % of a core (median of the runs, max 2 %)" in body
    assert "Load generator CPU, one board" in body


def test_a_file_written_before_runs_were_repeated_counts_as_one_run(tmp_path: Path) -> None:
    old = _latency_run(440, 700)
    del old["load"], old["engines"]
    _write(tmp_path, "latency", old)
    body = report.render(tmp_path)["performance"]
    row = next(line for line in body.splitlines() if "`first_audio_ms` P50, command" in line)
    assert "| 440 | – | ≤ 350: missed | 1 run, 2026-12-02, engines not recorded |" in row
    assert "written before runs were repeated), load not recorded" in body


def test_a_failed_run_is_left_out_of_the_figures(tmp_path: Path) -> None:
    runs = [_latency_run(440, 700), {"failed": "RuntimeError: boom", "load": {}}]
    data = cli.payload("latency", runs, 2, quick=False)
    assert data["runs_done"] == 1
    assert data["summary"]["first_audio_ms_grammar.p50"]["values"] == [440.0]


def test_capacity_rows_follow_the_sizes_measured(tmp_path: Path) -> None:
    def run(p95_at_40: float | None) -> dict[str, Any]:
        rows: list[dict[str, Any]] = [
            {"n": n, "fa_p95_ms": 500.0 + n, "late_pct": 0.0, "cpu_pct": 2.0 * n,
             "client_cpu_pct": 0.8 * n, "ok": True, "errors": 0}
            for n in (1, 5, 10, 20)
        ]  # fmt: skip
        if p95_at_40 is not None:
            rows.append({"n": 40, "fa_p95_ms": p95_at_40, "late_pct": 0.5, "cpu_pct": 80.0,
                         "client_cpu_pct": 30.0, "ok": p95_at_40 <= 1000, "errors": 0})  # fmt: skip
        return {"capacity": 40 if p95_at_40 and p95_at_40 <= 1000 else 20, "rows": rows}

    _write(
        tmp_path, "capacity", cli.payload("capacity", [run(900), run(1200), run(None)], 3, False)
    )
    body = report.render(tmp_path)["performance"]
    assert "Talking devices with P95" in body and "| 20 | 20–40 | ≥ 60: missed |" in body
    row40 = next(line for line in body.splitlines() if "Talking devices, 40 at once: P95" in line)
    assert "| 1,050 | 900–1,200 | ≤ 1,000: met in 1 of 2 runs | 2 of 3 runs," in row40
    assert "Talking devices, 40 at once: load generator CPU (% of one core) | 30 |" in body


def test_speech_latency_block(tmp_path: Path) -> None:
    def run(ms: float) -> dict[str, Any]:
        cell = {"n": 4, "p50": ms, "p95": ms + 300}
        return {
            "figures": {
                "routing (Piper) / command (grammar fast path)": cell,
                "routing (Piper) / question (Whisper path)": {**cell, "p50": ms + 400},
                "flite / command (grammar fast path)": cell,
            },
            "engines": {"routing (Piper)": {"tts": "routing"}, "flite": {"tts": "flite"}},
        }

    data = cli.payload("speech_latency", [run(900), run(1000), run(950)], 3, False)
    _write(tmp_path, "speech_latency", data)
    body = report.render(tmp_path)["speech_latency"]
    assert "| routing (Piper), the default | 950 [900–1,000] | 1,250 [1,200–1,300] |" in body
    assert "| flite | 950 [900–1,000] | 1,250 [1,200–1,300] | – | – |" in body
    assert "ms, median [min–max] over 3 runs of 4 turns per cell." in body


def test_write_replaces_only_the_blocks(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "# x\n\n<!-- bench:performance -->\nold\n<!-- /bench:performance -->\n\ntext\n"
        "<!-- bench:speech_latency -->\n<!-- /bench:speech_latency -->\nend\n"
    )
    results = tmp_path / "results"
    results.mkdir()
    _write(results, "latency", cli.payload("latency", [_latency_run(440, 700)], 1, True))
    args = ["--results", str(results), "--readme", str(readme)]
    assert report.main([*args, "--check"]) == 1
    assert report.main([*args, "--write"]) == 0
    text = readme.read_text()
    assert text.startswith("# x\n\n<!-- bench:performance -->\n<!-- generated")
    assert "\n\ntext\n<!-- bench:speech_latency -->\nNo `bench/results/speech_latency" in text
    assert text.endswith("<!-- /bench:speech_latency -->\nend\n") and "old" not in text
    assert report.main([*args, "--check"]) == 0
    assert "(--quick)" in text


def test_a_missing_block_is_an_error(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    assert report.main(["--readme", str(readme), "--write"]) == 2


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [(1342.4, "ms", "1,342"), (47.1, "kib", "47"), (1.26, "ms", "1.3"), (0.9412, "ratio", "0.94"),
     (3.0, "count", "3"), (0.0, "pct", "0.0")],
)  # fmt: skip
def test_number_formats(value: float, unit: str, text: str) -> None:
    assert report.number(value, unit) == text


def test_figures_of_a_failed_run_are_empty() -> None:
    assert of_run("latency", {"failed": "x"}) == {}
    assert of_run("nonesuch", {"a": 1}) == {}
