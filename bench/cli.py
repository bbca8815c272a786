"""``xiaozhi-bench`` / ``make bench``: run benchmarks, print tables, write bench/results/*.json.

Every benchmark runs ``--runs`` times (3; 1 with ``--quick``), the benchmarks taking turns
(run 1 of each, then run 2 of each, …), so a burst of load elsewhere on the machine spoils one
run of several benchmarks rather than every run of one. A result file holds every run (its
figures, the machine's load during it) and the summary over the runs: per figure the median,
min and max. ``xiaozhi-bench report --write`` puts them into README.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.figures import of_run
from bench.stats import RESULTS_DIR, LoadMeter, over_runs, write_result

Runner = Callable[[bool], dict[str, Any]]

OPT_IN = ("capacity_lm", "accuracy", "endpointing", "reply_opus")
"""Not run by default (name them): free-text LM capacity (also ``--lm``), the ASR accuracy corpus
and the commands through the speech-in chain (their figures are counts over a fixed corpus,
docs/speech.md), which take long, and the reply
Opus settings (audio.opus_complexity was chosen from it). ``capacity_default`` (the server's
default engines: Whisper answers the free-text questions) runs: it is the free-text path's
capacity."""


def _print_rows(console: Console, title: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    table = Table(title=title)
    for key in rows[0]:
        table.add_column(key, justify="right")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


def _print_summary(console: Console, title: str, summary: dict[str, dict[str, Any]]) -> None:
    rows = [
        {
            "figure": name,
            "median": s["median"],
            "min": s["min"],
            "max": s["max"],
            "runs": s["runs"],
        }
        for name, s in summary.items()
        if s["runs"]
    ]
    _print_rows(console, title, rows)


def _benchmarks() -> dict[str, Runner]:
    from bench import (
        accuracy,
        capacity,
        codec,
        efficiency,
        endpointing,
        idle,
        latency,
        reply_opus,
        scaled,
        speech_latency,
        transcribe,
    )

    return {
        "latency": latency.run,
        "speech_latency": speech_latency.run,
        "capacity": capacity.run,
        "capacity_workers": capacity.run_workers,
        "capacity_lm": capacity.run_lm,
        "capacity_default": capacity.run_default,
        "scaled": scaled.run,
        "idle": idle.run,
        "efficiency": efficiency.run,
        "codec": codec.run,
        "accuracy": accuracy.run,
        "endpointing": endpointing.run,
        "transcribe": transcribe.run,
        "reply_opus": reply_opus.run,
    }


NAMES = (
    "latency",
    "speech_latency",
    "capacity",
    "capacity_workers",
    "capacity_lm",
    "capacity_default",
    "scaled",
    "idle",
    "efficiency",
    "codec",
    "accuracy",
    "endpointing",
    "transcribe",
    "reply_opus",
)

SUBCOMMANDS = {"mock-ai": "bench.mock_ai", "chain": "bench.chain", "report": "bench.report"}
"""Tools with their own options (``xiaozhi-bench chain --help``)."""


def payload(name: str, runs: list[dict[str, Any]], requested: int, quick: bool) -> dict[str, Any]:
    """A result file's content: the summary over ``runs`` and the runs themselves."""
    loads = [r["load"] for r in runs if "load" in r]
    engines = next((r["engines"] for r in runs if r.get("engines")), None)
    return {
        "quick": quick,
        "runs_requested": requested,
        "runs_done": sum(1 for r in runs if not r.get("failed")),
        "engines": engines,
        "load": {
            "loadavg_start": loads[0].get("loadavg_start") if loads else None,
            "loadavg_end": loads[-1].get("loadavg_end") if loads else None,
            "others_cpu_pct": [ld.get("others_cpu_pct") for ld in loads],
            "wall_s": [ld.get("wall_s") for ld in loads],
        },
        "summary": over_runs([of_run(name, r) for r in runs if not r.get("failed")]),
        "runs": runs,
    }


def run_once(name: str, runner: Runner, quick: bool) -> dict[str, Any]:
    """One run with the machine's load around it; a failure is a run with ``failed``."""
    meter = LoadMeter()
    try:
        result = runner(quick)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # one failing run should not hide the others
        result = {"failed": f"{type(exc).__name__}: {exc}"}
    result["load"] = meter.stop()
    return result


def main(argv: list[str] | None = None) -> int:
    import importlib
    import sys

    args_in = sys.argv[1:] if argv is None else argv
    if args_in and args_in[0] in SUBCOMMANDS:
        tool: Any = importlib.import_module(SUBCOMMANDS[args_in[0]])
        return int(tool.main(args_in[1:]))
    parser = argparse.ArgumentParser(
        prog="xiaozhi-bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "names",
        nargs="*",
        help=f"benchmarks to run (default: all but {' and '.join(OPT_IN)}: "
        f"{', '.join(n for n in NAMES if n not in OPT_IN)}); or a tool: mock-ai (a local "
        "OpenAI-compatible AI service), chain (measure any server), report (README tables)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer turns/frames (a smoke run)")
    parser.add_argument(
        "--runs", type=int, metavar="N", help="runs of each benchmark (default 3, 1 with --quick)"
    )
    parser.add_argument("--lm", action="store_true", help="also run capacity in free-text LM mode")
    parser.add_argument(
        "--results", type=Path, default=RESULTS_DIR, metavar="DIR",
        help="where the result files go (default bench/results)",
    )  # fmt: skip
    args = parser.parse_args(args_in)
    unknown = [n for n in args.names if n not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(NAMES)}")
    runs = args.runs if args.runs is not None else 1 if args.quick else 3
    if runs < 1:
        parser.error("--runs must be at least 1")
    available = _benchmarks()
    console = Console(width=140)  # wide enough for every table when piped
    names = args.names or [n for n in NAMES if n not in OPT_IN or (n == "capacity_lm" and args.lm)]
    done: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    started = time.monotonic()
    for i in range(runs):
        for name in names:
            label = f"{name}{' (quick)' if args.quick else ''}, run {i + 1} of {runs}"
            console.rule(label)
            try:
                result = run_once(name, available[name], args.quick)
            except KeyboardInterrupt:  # the server subprocess is stopped by its context manager
                console.print("interrupted")
                return 130
            if result.get("failed"):
                console.print(f"[red]{name} failed: {result['failed']}")
            else:
                _print_rows(console, label, result.get("rows", []))
            done[name].append(result)
            data = payload(name, done[name], runs, args.quick)
            if i + 1 == runs:
                _print_summary(console, f"{name}: median, min, max over runs", data["summary"])
            path = write_result(name, data, args.results)
            console.print(f"written {path} ({time.monotonic() - started:.0f} s so far)")
    failures = sum(1 for results in done.values() for r in results if r.get("failed"))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
