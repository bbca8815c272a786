"""``make demo``: our server in-process + the simulator speaking a scripted conversation.

The one place that imports both ``server`` and ``device`` (they never import each other).

Synthesised speech (flite) goes through real VAD/ASR/dialogue/TTS; after every turn the demo
prints what the user said, what the assistant said, and the simulated things' states. It fails
(exit 1) when a turn gets no reply or the server heard other words than the script's.
Needs no input; Ctrl-C stops it cleanly (exit 130).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from device.app import Device, DeviceOptions
from device.audio.sources import synthesize
from device.events import DeviceEvent, SentenceStarted, SttReceived, TurnEnded
from device.scenario import Script, run_script

logger = logging.getLogger(__name__)

DEFAULT_SCRIPT: tuple[str, ...] = (
    "turn on the living room lamp",
    "set the kitchen lamp color to blue",
    "set the volume to thirty",
    "set the thermostat to twenty one degrees",
    "open the curtain",
    "what is the device status",
    "what time is it",
)


def words(text: str) -> list[str]:
    return "".join(c for c in text.lower() if c.isalnum() or c == " ").split()


def same_words(said: str, heard: str | None) -> bool:
    """Whether the server heard exactly the scripted words (case and punctuation aside)."""
    return heard is not None and words(said) == words(heard)


def board_of(device: Device) -> Any:
    """The simulated board behind the device's MCP server or legacy IoT adapter (or None)."""
    ctl = device.controller
    handler = ctl.mcp if ctl.mcp is not None else ctl.legacy_iot
    return getattr(handler, "board", None)


def states_table(status: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="things", show_lines=False)
    table.add_column("thing")
    table.add_column("state")
    for thing, props in status.items():
        table.add_row(thing, ", ".join(f"{k}={v}" for k, v in props.items()))
    return table


async def run_demo(
    script: Sequence[str] = DEFAULT_SCRIPT,
    *,
    console: Console | None = None,
    legacy_iot: bool = False,
    fast: bool = False,
) -> int:
    """Run the conversation; returns 0 on success, 1 if a turn failed."""
    from server.app import Server
    from server.config import load_settings

    out = console or Console()
    with tempfile.TemporaryDirectory(prefix="xiaozhi-demo-") as tmp:
        settings = load_settings(
            websocket={"host": "127.0.0.1", "port": 0},
            ota={"host": "127.0.0.1", "port": 0, "db_path": Path(tmp) / "devices.sqlite3"},
        )
        out.print("[bold]starting server and synthesising speech...[/bold]")
        utts = [await synthesize(text) for text in script]
        server = Server(settings)
        await server.start()
        device: Device | None = None
        try:
            ws_url = f"ws://127.0.0.1:{server.ws_port}{settings.websocket.path}"
            out.print(f"server on {ws_url}")

            def on_event(ev: DeviceEvent) -> None:
                if isinstance(ev, SttReceived):
                    out.print(f"[cyan]user said:[/cyan] {ev.text}")
                elif isinstance(ev, SentenceStarted):
                    out.print(f"[green]assistant said:[/green] {ev.text}")
                elif isinstance(ev, TurnEnded) and device is not None:
                    board = board_of(device)
                    if board is not None:
                        out.print(states_table(board.status()))

            options = DeviceOptions(
                state_file=Path(tmp) / "device.json",
                ws_url=ws_url,
                legacy_iot=legacy_iot,
                fast=fast,
            )
            device = await Device.create(options, on_event=on_event)
            await device.boot()
            replies = await run_script(device.controller, Script(utterances=utts, think_s=0.5))
            misheard = [r for r in replies if not same_words(r["said"], r["stt"])]
            for r in misheard:
                out.print(f"[red]misheard: said {r['said']!r}, the server heard {r['stt']!r}[/red]")
            if misheard:
                out.print(f"[red]demo failed: {len(misheard)} of {len(replies)} misheard[/red]")
                return 1
            out.print("[bold]demo finished[/bold]")
            return 0
        except Exception as exc:  # a failed turn: report it, exit non-zero
            out.print(f"[red]demo failed: {exc}[/red]")
            logger.debug("demo failure", exc_info=True)
            return 1
        finally:
            if device is not None:
                with contextlib.suppress(Exception):
                    await device.close()
            await server.stop()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m demo",
        description="Our server in-process and a simulated board speaking a scripted "
        "conversation; exit 1 when a turn gets no reply or is misheard.\n\nexample:\n"
        '  python -m demo "turn on the kitchen lamp" "what time is it"',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "say", nargs="*", metavar="TEXT", help="what the user says, in order (default: 7 commands)"
    )
    p.add_argument(
        "--legacy-iot", action="store_true", help="a legacy IoT board (firmware 1.7.7) instead"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    script = args.say or list(DEFAULT_SCRIPT)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(run_demo(script, legacy_iot=args.legacy_iot))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
