r"""xiaozhi-device: a simulated xiaozhi board (OTA boot, WebSocket or MQTT + UDP, Opus, MCP).

It boots like a board, speaks scripted requests (or your microphone) to a server and reports
what happened: a live panel, or one JSON event per line with --json. A scripted run ends with
one "result" event and exits 0 when every request got its reply.

examples:
  xiaozhi-device --ota-url http://127.0.0.1:8003/xiaozhi/ota/ --say "turn on the lamp"
  xiaozhi-device --ws-url ws://127.0.0.1:8000/xiaozhi/v1/ --wav question.wav --ptt --json
  xiaozhi-device --ws-url ws://127.0.0.1:8000/xiaozhi/v1/ --wake-word "hey computer" \
      --say "what time is it"
  xiaozhi-device --ws-url ws://127.0.0.1:8000/xiaozhi/v1/ --mic --output speaker
      (interactive: Enter = button, w = wake word, p/r = push-to-talk press/release, q = quit)
  xiaozhi-device swarm -n 10 --ws-url ws://127.0.0.1:8000/xiaozhi/v1/ --say "what time is it"
  xiaozhi-device --ota-url http://127.0.0.1:8003/xiaozhi/ota/ --transport mqtt --udp-loss 0.05 \
      --say "turn on the lamp"   (MQTT + UDP, as the OTA answer's mqtt section configures it)

exit status: 0 ok, 1 a failed run (the message says what to change), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from device.app import Device
from device.arguments import (
    DEFAULT_WAKE_WORD,
    URL_EXAMPLE,
    HelpFormatter,
    RunSettings,
    add_common,
)
from device.errors import DeviceError, UsageError
from device.events import RunFinished
from device.scenario import run_script
from device.selfcheck import run_conformance_flows
from device.view import JsonView, RichView, View
from device.wakeword import KeyphraseSpotter

logger = logging.getLogger(__name__)
DEFAULT_STATE = Path.home() / ".config" / "xiaozhi-device" / "state.json"
USAGE = (
    "xiaozhi-device [options]          one board\n"
    "       xiaozhi-device swarm [options]    many boards (xiaozhi-device swarm --help)"
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xiaozhi-device", usage=USAGE, description=__doc__, formatter_class=HelpFormatter
    )
    add_common(p)
    board = p.add_argument_group("identity and audio")
    board.add_argument(
        "--state",
        type=Path,
        default=DEFAULT_STATE,
        metavar="FILE",
        help="identity (MAC, UUID, OTA settings) kept across runs, like a board's NVS",
    )
    board.add_argument(
        "--board",
        metavar="NAME",
        help="board name in the User-Agent (default: the state file's, else bread-compact-wifi)",
    )
    board.add_argument(
        "--firmware",
        metavar="X.Y.Z",
        help="simulated firmware version: hello, OTA system info and User-Agent follow it "
        "(default: 2.4.2, or 1.7.7 with --legacy-iot)",
    )
    board.add_argument(
        "--language",
        metavar="CODE",
        help="Accept-Language, e.g. en-US or zh-CN (default: the state file's, else en-US)",
    )
    board.add_argument(
        "--mic",
        action="store_true",
        help="speak through the microphone (needs the [mic] extra and a sound card)",
    )
    board.add_argument(
        "--output",
        default="null",
        metavar="null|speaker|FILE.wav",
        help="where the replies' audio goes",
    )
    board.add_argument(
        "--wake-phrase",
        metavar="TEXT",
        help="with --mic: spot this wake phrase in the live audio (pocketsphinx)",
    )
    board.add_argument(
        "--json",
        action="store_true",
        help="print one JSON event per line instead of the live panel",
    )
    board.add_argument(
        "--conformance-flows",
        action="store_true",
        help="run the flows the device checker scores (click, barge-in, wake word, push-to-talk)",
    )
    return p


async def interactive(device: Device) -> None:
    """Keyboard driving: Enter = button, w = wake word, p/r = push-to-talk, q = quit."""
    ctl = device.controller
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        cmd = line.strip().lower()
        if not line or cmd == "q":
            return
        if cmd == "":
            await ctl.click()
        elif cmd == "w":
            await ctl.wake_word(DEFAULT_WAKE_WORD)
        elif cmd == "p":
            await ctl.press()
        elif cmd == "r":
            await ctl.release()


async def run(args: argparse.Namespace, view: View) -> list[dict[str, Any]]:
    """One board's whole run; the replies of a scripted run (raises a DeviceError)."""
    settings = RunSettings.from_args(args)
    utts = await settings.utterances()
    if not utts and not args.mic and not args.conformance_flows:
        raise UsageError("nothing to say: give --say TEXT or --wav FILE, or --mic for live audio")
    opts = settings.device_options(
        state_file=args.state,
        board=args.board,
        language=args.language,
        mic=args.mic,
        sink=args.output,
    )
    device = await Device.create(opts, view)
    ctl = device.controller
    if args.wake_phrase:
        ctl.wake_spotter = KeyphraseSpotter(args.wake_phrase)
    meter = asyncio.create_task(_meter(device, view))
    try:
        await device.boot()
        if args.conformance_flows:
            await run_conformance_flows(ctl, args.channel_timeout)
        elif utts:
            return await run_script(ctl, settings.script(utts))
        else:
            await interactive(device)
        return []
    finally:
        meter.cancel()
        await device.close()


async def _meter(device: Device, view: View) -> None:
    """Feed the level meter 10 times a second (loudest of what is sent and what is played)."""
    ctl = device.controller
    while True:
        await asyncio.sleep(0.1)
        view.tick(max(ctl.mic_level_dbfs, ctl.player.level_dbfs))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["swarm"]:
        from device.swarm import main as swarm_main

        return swarm_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.ota_url and not args.ws_url:
        parser.print_usage(sys.stderr)
        message = f"give --ota-url or --ws-url ({URL_EXAMPLE})"
        print(f"xiaozhi-device: {message}", file=sys.stderr)
        if args.json:
            JsonView()(RunFinished(ok=False, code="usage", error=message))
        return 2
    view: View = JsonView() if args.json else RichView()
    result, status = RunFinished(ok=True), 0
    try:
        result = RunFinished(ok=True, replies=tuple(asyncio.run(run(args, view))))
    except DeviceError as exc:
        result, status = RunFinished(ok=False, code=str(exc.code), error=str(exc)), exc.exit_status
    except KeyboardInterrupt:
        result, status = RunFinished(ok=False, code="interrupted", error="interrupted"), 130
    except Exception as exc:  # a bug: one line, the traceback only with -v
        logger.error("unexpected failure", exc_info=args.verbose > 0)
        result = RunFinished(ok=False, code="internal-error", error=f"{type(exc).__name__}: {exc}")
        status = 1
    finally:
        view(result)
        view.close()
    if result.error and status != 130:
        print(f"xiaozhi-device: {result.error}", file=sys.stderr)
    return status
