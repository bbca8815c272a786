"""``xiaozhi-device swarm``: N headless simulated boards in one process, measuring every turn.

Each device boots (OTA or ``--ws-url``), then runs the same script (``--say``/``--wav``,
``--turns``, ``--think``); per-turn ``endpoint_ms``, ``first_audio_ms``, ``abort_ms`` and
``stale_frames`` (benchmarks.md) are collected, printed as a rich table and written as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import statistics
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.stats import percentile
from device.app import Device, DeviceOptions, MqttNotImplemented
from device.audio.sources import AudioSourceError, Utterance
from device.cli import add_common, load_utterances, options_from, script_from
from device.scenario import ScenarioError, run_script

logger = logging.getLogger(__name__)
METRICS = ("endpoint_ms", "first_audio_ms", "abort_ms")


async def run_one(
    index: int,
    opts: DeviceOptions,
    args: argparse.Namespace,
    utts: list[Utterance],
    start_delay_s: float,
) -> dict[str, Any]:
    """One device's whole run; errors are reported in the result, not raised."""
    await asyncio.sleep(start_delay_s)
    device = await Device.create(opts, None)
    error = None
    try:
        await device.boot()
        await run_script(device.controller, script_from(args, utts))
    except (ScenarioError, MqttNotImplemented, AudioSourceError, OSError) as exc:
        error = str(exc)
        logger.error("device %d: %s", index, exc)
    finally:
        await device.close()
    turns = [
        t.result()
        for t in device.controller.turns
        if t.stt is not None or t.first_audio is not None or t.abort_sent is not None
    ]
    return {
        "device": index,
        "mac": device.identity.mac,
        "error": error,
        "turns": turns,
        "dropped_packets": device.controller.player.dropped,
    }


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    turns = [t for r in results for t in r["turns"]]
    out: dict[str, Any] = {
        "devices": len(results),
        "turns": len(turns),
        "errors": sum(1 for r in results if r["error"]),
        "stale_frames": sum(t["stale_frames"] for t in turns),
    }
    for m in METRICS:
        vals = [t[m] for t in turns if t[m] is not None]
        out[m] = {
            "n": len(vals),
            "p50": percentile(vals, 50),
            "p95": percentile(vals, 95),
            "mean": round(statistics.fmean(vals), 1) if vals else None,
        }
    return out


def print_table(summary: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"swarm: {summary['devices']} devices, {summary['turns']} turns, "
        f"{summary['errors']} errors, {summary['stale_frames']} stale frames"
    )
    for col in ("metric", "n", "p50 ms", "p95 ms", "mean ms"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    for m in METRICS:
        s = summary[m]
        table.add_row(
            m,
            str(s["n"]),
            *(str(s[k]) if s[k] is not None else "–" for k in ("p50", "p95", "mean")),
        )
    console.print(table)


async def run_swarm(args: argparse.Namespace) -> dict[str, Any]:
    utts = await load_utterances(args)
    if not utts:
        raise AudioSourceError("give --say or --wav")
    rng = random.Random(args.seed)
    jobs = [
        run_one(
            i, options_from(args, realtime_playback=True), args, utts, rng.uniform(0, args.ramp)
        )
        for i in range(args.n)
    ]
    results = await asyncio.gather(*jobs)
    return {"summary": summarize(results), "devices": results}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="xiaozhi-device swarm", description=__doc__)
    add_common(p)
    p.add_argument("-n", type=int, default=5, help="number of devices")
    p.add_argument("--ramp", type=float, default=2.0, help="spread device starts over S s")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("swarm-results.json"), help="JSON output")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.ota_url and not args.ws_url:
        print("xiaozhi-device swarm: give --ota-url or --ws-url", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(run_swarm(args))
    except AudioSourceError as exc:
        print(f"xiaozhi-device swarm: {exc}", file=sys.stderr)
        return 1
    args.out.write_text(json.dumps(report, indent=1))
    print_table(report["summary"], Console())
    return 1 if report["summary"]["errors"] else 0
