"""``xiaozhi-bench`` / ``make bench``: run benchmarks, print tables, write bench/results/*.json."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import (
    accuracy,
    capacity,
    codec,
    efficiency,
    idle,
    latency,
    scaled,
    speech_latency,
    transcribe,
)
from bench.stats import write_result

Runner = Callable[[bool], dict[str, Any]]


def _print_rows(console: Console, title: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    table = Table(title=title)
    for key in rows[0]:
        table.add_column(key, justify="right")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


def _benchmarks() -> dict[str, Runner]:
    return {
        "latency": latency.run,
        "speech_latency": speech_latency.run,
        "capacity": capacity.run,
        "capacity_lm": capacity.run_lm,
        "scaled": scaled.run,
        "idle": idle.run,
        "efficiency": efficiency.run,
        "codec": codec.run,
        "accuracy": accuracy.run,
        "transcribe": transcribe.run,
    }


SUBCOMMANDS = {"mock-ai": "bench.mock_ai", "chain": "bench.chain"}
"""Tools with their own options (``xiaozhi-bench chain --help``)."""


def main(argv: list[str] | None = None) -> int:
    import importlib
    import sys

    args_in = sys.argv[1:] if argv is None else argv
    if args_in and args_in[0] in SUBCOMMANDS:
        tool: Any = importlib.import_module(SUBCOMMANDS[args_in[0]])
        return int(tool.main(args_in[1:]))
    available = _benchmarks()
    parser = argparse.ArgumentParser(prog="xiaozhi-bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        help=f"benchmarks to run (default: all of {', '.join(available)}); or a tool: "
        "mock-ai (a local OpenAI-compatible AI service), chain (measure any server)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer turns/frames (a smoke run)")
    parser.add_argument("--lm", action="store_true", help="also run capacity in free-text LM mode")
    args = parser.parse_args(args_in)
    unknown = [n for n in args.names if n not in available]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(available)}")
    console = Console(width=140)  # wide enough for every table when piped
    failures = 0
    default = [n for n in available if n != "capacity_lm" or args.lm]
    for name in args.names or default:
        console.rule(f"{name}{' (quick)' if args.quick else ''}")
        try:
            result = available[name](args.quick)
        except KeyboardInterrupt:  # the server subprocess is stopped by its context manager
            console.print("interrupted")
            return 130
        except Exception as exc:  # one failing benchmark should not hide the others
            console.print(f"[red]{name} failed: {exc}")
            failures += 1
            continue
        _print_rows(console, name, result.get("rows", []))
        path = write_result(name, result)
        console.print(f"written {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
