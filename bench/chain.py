r"""xiaozhi-bench chain: drive any xiaozhi server with simulated boards and measure the chain.

The boards are the simulator's swarm: real-time paced Opus of real (flite) speech, the
firmware's hello and listen messages. Reported per server: connect and hello time, then per
number of boards N: P50/P95 ``first_audio_ms`` (end of the user's speech → first reply audio),
``endpoint_ms`` (→ ``stt``), late downlink frames, errors, and the capacity (largest N whose
P95 first_audio_ms is within --target-ms with < --late-pct late frames and no errors). One
untimed turn of one board warms each server up first (--no-warmup: none).

Point two servers at the same ``xiaozhi-bench mock-ai`` and --compare them: the engines are the
same, so the difference is server time. With --expect-ms ASR,LLM,TTS (the mock's fixed
latencies) the server overhead is shown: first_audio_ms − ASR − LLM − TTS − --silence-ms (the
end-of-speech silence the server's VAD waits).

examples:
  xiaozhi-bench chain --url ws://127.0.0.1:8000/xiaozhi/v1/ -n 1,5,10
  xiaozhi-bench chain --ota-url http://127.0.0.1:8003/xiaozhi/ota/ --expect-ms 200,300,150
  xiaozhi-bench chain --url ws://127.0.0.1:8000/xiaozhi/v1/ \
      --compare ws://127.0.0.1:8100/xiaozhi/v1/ --json chain.json

exit status: 0 measured, 1 a server could not be measured (refused, no hello), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.chain_run import ChainResult, ChainScript, ServerTarget, run_chain
from bench.stats import machine
from device.errors import DeviceError


def overhead(
    row: dict[str, Any], expect_ms: tuple[float, ...], silence_ms: float
) -> dict[str, float | None]:
    """Server overhead (P50, P95) of one row: first audio minus the known provider time."""
    known = sum(expect_ms) + silence_ms
    fa = row["first_audio_ms"]
    return {k: None if fa[k] is None else round(fa[k] - known, 1) for k in ("p50", "p95")}


def _ms(d: dict[str, Any], key: str) -> str:
    v = d.get(key)
    return "–" if v is None else f"{v:.0f}"


def print_tables(results: list[ChainResult], report: dict[str, Any], console: Console) -> None:
    head = Table(title="connect and hello (ms)")
    for col in ("server", "connect p50", "connect p95", "hello p50", "hello p95", "capacity"):
        head.add_column(col, justify="left" if col == "server" else "right")
    for r in results:
        head.add_row(
            r.target.label,
            _ms(r.connect, "p50"),
            _ms(r.connect, "p95"),
            _ms(r.hello, "p50"),
            _ms(r.hello, "p95"),
            str(r.capacity),
        )
    console.print(head)
    expect = report["script"].get("expect_ms")
    table = Table(
        title=f"voice turns (ms; target P95 first audio ≤ {report['script']['target_p95_ms']:.0f})"
    )
    cols = (
        [
            "server",
            "N",
            "turns",
            "errors",
            "first audio p50",
            "p95",
            "endpoint p50",
            "stt→audio p50",
            "late %",
        ]
        + (["overhead p50", "p95 "] if expect else [])
        + ["ok"]
    )
    for col in cols:
        table.add_column(col, justify="left" if col == "server" else "right")
    for r, server in zip(results, report["servers"], strict=True):
        for row, extra in zip(r.rows, server.get("overhead_ms", [None] * len(r.rows)), strict=True):
            late = "–" if row["late_pct"] is None else f"{row['late_pct']:.2f}"
            cells = [
                r.target.label,
                str(row["n"]),
                str(row["turns"]),
                str(row["errors"]),
                _ms(row["first_audio_ms"], "p50"),
                _ms(row["first_audio_ms"], "p95"),
                _ms(row["endpoint_ms"], "p50"),
                _ms(row["stt_to_audio_ms"], "p50"),
                late,
            ]
            if expect:
                cells += [_ms(extra, "p50"), _ms(extra, "p95")]
            table.add_row(*cells, "yes" if row["ok"] else "no")
    console.print(table)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xiaozhi-bench chain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = p.add_argument_group("the server(s)")
    where.add_argument("--url", metavar="WS_URL", help="the server's WebSocket URL")
    where.add_argument("--ota-url", metavar="URL", help="or its OTA URL (boards boot through it)")
    where.add_argument("--token", help="bearer token for the WebSocket")
    where.add_argument(
        "--compare",
        metavar="URL",
        help="a second server (ws:// or http://…/ota/) run after the first on the same script",
    )
    where.add_argument("--label", action="append", default=[], help="names in the tables")
    script = p.add_argument_group("the script")
    script.add_argument(
        "--say",
        action="append",
        default=[],
        metavar="TEXT",
        help="utterances (flite), repeatable (default: what time is it; turn on the lamp)",
    )
    script.add_argument("--turns", type=int, default=2, help="rounds per board (default 2)")
    script.add_argument(
        "--think", type=float, default=1.0, help="pause between turns, s (default 1)"
    )
    script.add_argument(
        "-n", default="1,5,10", metavar="N,N,…", help="board counts (default 1,5,10)"
    )
    script.add_argument(
        "--target-ms",
        type=float,
        default=1500.0,
        help="P95 first_audio_ms within which N counts (default 1500)",
    )
    script.add_argument(
        "--late-pct", type=float, default=1.0, help="late frames allowed, %% (default 1)"
    )
    script.add_argument(
        "--no-warmup", action="store_true", help="measure from the first turn (no untimed turn)"
    )
    script.add_argument("--hello-probes", type=int, default=5, help="connections timed (default 5)")
    known = p.add_argument_group("known provider time (a mock chain)")
    known.add_argument(
        "--expect-ms",
        metavar="ASR,LLM,TTS",
        help="the mock's latencies: ASR result, LLM first token, TTS first audio",
    )
    known.add_argument(
        "--silence-ms",
        type=float,
        default=400.0,
        help="end-of-speech silence the server waits (default 400: vad.endpoint_silence_ms)",
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    return p


def _target(url: str, label: str, token: str | None) -> ServerTarget:
    if url.startswith(("ws://", "wss://")):
        return ServerTarget(label, ws_url=url, token=token)
    return ServerTarget(label, ota_url=url, token=token)


async def run(targets: list[ServerTarget], script: ChainScript) -> list[ChainResult]:
    return [await run_chain(t, script) for t in targets]  # one after the other, never together


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    first = args.url or args.ota_url
    if not first:
        parser.error(
            "give --url ws://HOST:PORT/xiaozhi/v1/ or --ota-url http://HOST:PORT/xiaozhi/ota/"
        )
    try:
        sizes = tuple(int(x) for x in args.n.split(","))
        expect = tuple(float(x) for x in args.expect_ms.split(",")) if args.expect_ms else None
    except ValueError:
        parser.error("-n takes N,N,… and --expect-ms ASR,LLM,TTS (numbers)")
    if expect is not None and len(expect) != 3:
        parser.error("--expect-ms takes three numbers: ASR,LLM,TTS")
    labels = args.label + ["A", "B"][len(args.label) :]
    targets = [_target(first, labels[0], args.token)]
    if args.compare:
        targets.append(_target(args.compare, labels[1], args.token))
    script = ChainScript(
        say=tuple(args.say) or ChainScript.say,
        turns=args.turns,
        think_s=args.think,
        sizes=sizes,
        target_p95_ms=args.target_ms,
        late_pct_max=args.late_pct,
        hello_probes=args.hello_probes,
        warmup=not args.no_warmup,
    )
    try:
        results = asyncio.run(run(targets, script))
    except (DeviceError, OSError, TimeoutError) as exc:
        print(f"xiaozhi-bench chain: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    report: dict[str, Any] = {
        "script": {
            "say": list(script.say),
            "turns": script.turns,
            "think_s": script.think_s,
            "sizes": list(sizes),
            "target_p95_ms": script.target_p95_ms,
            "late_pct_max": script.late_pct_max,
            "expect_ms": expect,
            "silence_ms": args.silence_ms,
        },
        "machine": machine(),
        "servers": [r.as_json() for r in results],
    }
    if expect is not None:
        for server, r in zip(report["servers"], results, strict=True):
            server["overhead_ms"] = [overhead(row, expect, args.silence_ms) for row in r.rows]
    print_tables(results, report, Console(width=150))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0
