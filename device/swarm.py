r"""xiaozhi-device swarm: N headless simulated boards in one process, measuring every turn.

Each board boots (OTA or --ws-url), then runs the same script (--say/--wav, --turns,
--think); per-turn endpoint_ms, first_audio_ms, abort_ms and stale_frames are collected and
printed as a table (ms, one decimal); --results FILE also writes them as JSON.

examples:
  xiaozhi-device swarm -n 10 --ws-url ws://127.0.0.1:8000/xiaozhi/v1/ \
      --say "what time is it" --turns 5
  xiaozhi-device swarm -n 3 --ota-url http://127.0.0.1:8003/xiaozhi/ota/ \
      --say "turn on the lamp" --results swarm.json

exit status: 0 when every board finished, 1 when one failed, 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from device.app import Device
from device.arguments import URL_EXAMPLE, HelpFormatter, RunSettings, add_common
from device.audio.sources import Utterance
from device.errors import ChannelError, ChannelLost, DeviceError, ReplyTimeout, UsageError
from device.scenario import run_script

logger = logging.getLogger(__name__)
METRICS = ("endpoint_ms", "first_audio_ms", "abort_ms")


@dataclass(frozen=True)
class SwarmConfig:
    """A swarm run: the shared settings plus how many boards and how they start."""

    settings: RunSettings
    n: int = 5
    """Number of boards."""
    ramp_s: float = 2.0
    """Board starts are spread uniformly over this many seconds."""
    seed: int = 1
    results: Path | None = None
    """Write the JSON report here (None: only the table)."""
    utterances: list[Utterance] | None = field(default=None, compare=False)
    """Ready-made utterances (None: speak ``settings.say``/``settings.wav``)."""
    reconnect: bool = False
    """A turn that fails on the channel (server gone, refused, restarted) is tried again after
    a backoff (``RECONNECT_BACKOFF_S`` doubling to ``RECONNECT_MAX_S``, with jitter) instead of
    ending the board's run; every turn then opens its own connection."""
    reconnect_give_up_s: float = 120.0
    """With ``reconnect``: a turn still failing after this long ends the run (s)."""


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) by linear interpolation, rounded to 0.1; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (pos - low), 1)


RECONNECT_BACKOFF_S = 0.5
RECONNECT_MAX_S = 8.0


async def _turns_with_reconnect(
    device: Device, config: SwarmConfig, utts: list[Utterance], rng: random.Random
) -> int:
    """Each turn on its own, retried with backoff while the channel fails; reconnects made."""
    script = config.settings.script(utts)
    reconnects = 0
    for utt in [u for _ in range(script.turns) for u in script.utterances]:
        delay, give_up = RECONNECT_BACKOFF_S, time.monotonic() + config.reconnect_give_up_s
        while True:
            try:
                await run_script(device.controller, replace(script, utterances=[utt], turns=1))
                break
            except (ChannelError, ChannelLost, ReplyTimeout, OSError) as exc:
                if time.monotonic() + delay > give_up:
                    raise
                logger.warning("turn failed (%s); reconnecting in %.1f s", exc, delay)
                await device.controller.hang_up()
                await asyncio.sleep(delay * rng.uniform(0.8, 1.2))
                delay = min(2 * delay, RECONNECT_MAX_S)
                reconnects += 1
    return reconnects


async def run_one(
    index: int, config: SwarmConfig, utts: list[Utterance], start_delay_s: float
) -> dict[str, Any]:
    """One board's whole run; errors are reported in the result, not raised."""
    await asyncio.sleep(start_delay_s)
    device = await Device.create(config.settings.device_options(realtime_playback=True), None)
    error = None
    reconnects = 0
    try:
        await device.boot()
        if config.reconnect:
            reconnects = await _turns_with_reconnect(
                device, config, utts, random.Random(config.seed + index)
            )
        else:
            await run_script(device.controller, config.settings.script(utts))
    except (DeviceError, OSError) as exc:
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
        "reconnects": reconnects,
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


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def print_table(summary: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"swarm: {summary['devices']} devices, {summary['turns']} turns, "
        f"{summary['errors']} errors, {summary['stale_frames']} stale frames"
    )
    for col in ("metric", "n", "p50 ms", "p95 ms", "mean ms"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    for m in METRICS:
        s = summary[m]
        table.add_row(m, str(s["n"]), *(_ms(s[k]) for k in ("p50", "p95", "mean")))
    console.print(table)


async def run_swarm(config: SwarmConfig) -> dict[str, Any]:
    """Run every board; ``{"summary": …, "devices": [...]}``."""
    utts = config.utterances or await config.settings.utterances()
    if not utts:
        raise UsageError("nothing to say: give --say TEXT or --wav FILE")
    rng = random.Random(config.seed)
    jobs = [run_one(i, config, utts, rng.uniform(0, config.ramp_s)) for i in range(config.n)]
    results = await asyncio.gather(*jobs)
    return {"summary": summarize(results), "devices": results}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xiaozhi-device swarm", description=__doc__, formatter_class=HelpFormatter
    )
    add_common(p)
    swarm = p.add_argument_group("the swarm")
    swarm.add_argument("-n", type=int, default=5, help="number of boards")
    swarm.add_argument(
        "--ramp", type=float, default=2.0, metavar="S", help="spread board starts over S s"
    )
    swarm.add_argument("--seed", type=int, default=1, help="seed of the start-time spread")
    swarm.add_argument(
        "--results", type=Path, metavar="FILE", help="also write every turn as JSON to FILE"
    )
    swarm.add_argument(
        "--reconnect",
        action="store_true",
        help="retry a turn whose connection fails (server restarted) with backoff, each turn on "
        "its own connection",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.ota_url and not args.ws_url:
        parser.print_usage(sys.stderr)
        print(f"xiaozhi-device swarm: give --ota-url or --ws-url ({URL_EXAMPLE})", file=sys.stderr)
        return 2
    config = SwarmConfig(
        RunSettings.from_args(args),
        n=args.n,
        ramp_s=args.ramp,
        seed=args.seed,
        results=args.results,
        reconnect=args.reconnect,
    )
    try:
        report = asyncio.run(run_swarm(config))
    except DeviceError as exc:
        print(f"xiaozhi-device swarm: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return 130
    if config.results is not None:
        config.results.write_text(json.dumps(report, indent=1) + "\n")
    print_table(report["summary"], Console())
    return 1 if report["summary"]["errors"] else 0
