"""``xiaozhi-device``: run one simulated board, or ``xiaozhi-device swarm`` for many.

Examples::

    xiaozhi-device --ota-url http://127.0.0.1:8000/xiaozhi/ota/ --say "turn on the lamp"
    xiaozhi-device --ws-url ws://127.0.0.1:8000/xiaozhi/v1/ --wav q.wav --ptt --json
    xiaozhi-device --ws-url ws://... --mic --output speaker      (Enter = button, q = quit)
    xiaozhi-device swarm -n 10 --ws-url ws://... --say "what time is it" --turns 5
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from device.app import Device, DeviceOptions, MqttNotImplemented
from device.audio.sources import AudioSourceError, Utterance, synthesize, utterance_from_wav
from device.scenario import ScenarioError, Script, run_script
from device.selfcheck import run_conformance_flows
from device.view import JsonView, RichView
from device.wakeword import KeyphraseSpotter, WakeWordUnavailable
from device.wsclient import WsError

logger = logging.getLogger(__name__)
DEFAULT_STATE = Path.home() / ".config" / "xiaozhi-device" / "state.json"


def add_common(p: argparse.ArgumentParser) -> None:
    """Options shared by the single device and the swarm."""
    p.add_argument("--ota-url", help="OTA/config URL to boot from (POSTs system info)")
    p.add_argument("--ws-url", help="skip OTA and use this ws:// URL")
    p.add_argument("--token", help="token for --ws-url (sent as Authorization: Bearer)")
    p.add_argument("--protocol-version", type=int, choices=(1, 2, 3), help="binary protocol")
    p.add_argument("--say", action="append", default=[], help="utterance to speak (flite)")
    p.add_argument("--wav", action="append", default=[], type=Path, help="utterance WAV file")
    p.add_argument("--turns", type=int, default=1, help="repeat the utterances K times")
    p.add_argument("--think", type=float, default=1.0, help="seconds between turns")
    p.add_argument("--ptt", action="store_true", help="push-to-talk (manual mode)")
    p.add_argument("--wake-word", metavar="TEXT", help="start by wake word TEXT, not a click")
    p.add_argument("--abort-after", type=float, help="barge in S s after the reply starts")
    p.add_argument("--aec", action="store_true", help="device AEC: realtime listening mode")
    p.add_argument("--fast", action="store_true", help="send scripted speech faster than real time")
    p.add_argument("--legacy-iot", action="store_true", help="legacy 'iot' messages, not MCP")
    p.add_argument("--channel-timeout", type=float, default=120.0, help="inactivity rule, s")
    p.add_argument("-v", "--verbose", action="count", default=0)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xiaozhi-device",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common(p)
    p.add_argument("--state", type=Path, default=DEFAULT_STATE, help="identity/NVS JSON file")
    p.add_argument("--board", help="board name (User-Agent), e.g. bread-compact-wifi")
    p.add_argument("--firmware", help="firmware version, e.g. 2.4.2")
    p.add_argument("--language", help="language code, e.g. en-US")
    p.add_argument("--mic", action="store_true", help="use the microphone (extra [mic])")
    p.add_argument("--output", default="null", help="null | speaker | PATH.wav")
    p.add_argument("--json", action="store_true", help="print one JSON event per line")
    p.add_argument("--wake-phrase", help="with --mic: spot this phrase (pocketsphinx)")
    p.add_argument(
        "--conformance-flows",
        action="store_true",
        help="run the flows the device checker scores (click, barge-in, wake word, PTT)",
    )
    return p


def options_from(args: argparse.Namespace, **extra: object) -> DeviceOptions:
    opts = DeviceOptions(
        ota_url=args.ota_url,
        ws_url=args.ws_url,
        token=args.token,
        protocol_version=args.protocol_version,
        aec=args.aec,
        fast=args.fast,
        channel_timeout_s=args.channel_timeout,
        legacy_iot=args.legacy_iot,
    )
    for key, value in extra.items():
        setattr(opts, key, value)
    return opts


async def load_utterances(args: argparse.Namespace) -> list[Utterance]:
    utts = [await synthesize(text) for text in args.say]
    return utts + [utterance_from_wav(path) for path in args.wav]


def script_from(args: argparse.Namespace, utts: list[Utterance]) -> Script:
    mode = "ptt" if args.ptt else ("wake" if args.wake_word else "click")
    return Script(
        utts,
        turns=args.turns,
        mode=mode,
        wake_word=args.wake_word or "hey computer",
        think_s=args.think,
        abort_after_s=args.abort_after,
    )


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
            await ctl.wake_word("hey computer")
        elif cmd == "p":
            await ctl.press()
        elif cmd == "r":
            await ctl.release()


async def run(args: argparse.Namespace) -> int:
    view = JsonView() if args.json else RichView()
    utts = await load_utterances(args)
    if not utts and not args.mic and not args.conformance_flows:
        raise AudioSourceError("nothing to say: give --say/--wav, or --mic for live audio")
    opts = options_from(
        args,
        state_file=args.state,
        board=args.board,
        firmware=args.firmware,
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
            await run_script(device.controller, script_from(args, utts))
        else:
            await interactive(device)
    finally:
        meter.cancel()
        await device.close()
        view.close()
    return 0


async def _meter(device: Device, view: JsonView | RichView) -> None:
    """Feed the level meter 10 times a second (loudest of mic and playback)."""
    ctl = device.controller
    while True:
        await asyncio.sleep(0.1)
        view.tick(max(ctl.mic_level_dbfs, ctl.player.level_dbfs))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["swarm"]:
        from device.swarm import main as swarm_main

        return swarm_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.ota_url and not args.ws_url:
        print("xiaozhi-device: give --ota-url or --ws-url", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(args))
    except MqttNotImplemented as exc:
        print(f"xiaozhi-device: MQTT is not implemented: {exc}", file=sys.stderr)
        return 3
    except (AudioSourceError, ScenarioError, WsError, WakeWordUnavailable, ValueError) as exc:
        print(f"xiaozhi-device: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
