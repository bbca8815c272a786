"""``xiaozhi-bench`` / ``make bench``: run benchmarks, print tables, write bench/results/*.json."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import codec
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
    return {"codec": codec.run}


def main(argv: list[str] | None = None) -> int:
    available = _benchmarks()
    parser = argparse.ArgumentParser(prog="xiaozhi-bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(available)})"
    )
    parser.add_argument("--quick", action="store_true", help="fewer turns/frames (a smoke run)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in available]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(available)}")
    console = Console()
    for name in args.names or list(available):
        console.rule(f"{name}{' (quick)' if args.quick else ''}")
        result = available[name](args.quick)
        _print_rows(console, name, result.get("rows", []))
        path = write_result(name, result)
        console.print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
