"""Command-line options shared by ``xiaozhi-device`` and ``xiaozhi-device swarm``.

:func:`add_common` declares them (every option has a help text; defaults are shown by
:class:`HelpFormatter`); :class:`RunSettings` is their typed form, from which a
:class:`~device.app.DeviceOptions` and a :class:`~device.scenario.Script` are made.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from device import tls
from device.app import DeviceOptions
from device.audio.sources import Utterance, synthesize, utterance_from_wav
from device.conversation import Mode
from device.scenario import Script

DEFAULT_WAKE_WORD = "hey computer"
URL_EXAMPLE = "e.g. --ws-url ws://127.0.0.1:8000/xiaozhi/v1/"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks; appends ``(default: X)`` to an option's help when
    it has a real default (not None, False or empty) the help does not already name."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if default in (None, False, [], argparse.SUPPRESS) or "default" in text:
            return text
        return f"{text} (default: {default})" if action.nargs != 0 else text


def add_common(p: argparse.ArgumentParser) -> None:
    """Options shared by the single device and the swarm."""
    where = p.add_argument_group("where to connect (give one)")
    where.add_argument(
        "--ota-url",
        metavar="URL",
        help="boot like a board: POST the system info to this OTA URL and use the WebSocket URL "
        "it answers (xiaozhi-server: http://HOST:8003/xiaozhi/ota/)",
    )
    where.add_argument(
        "--ws-url",
        metavar="URL",
        help="skip OTA and open this WebSocket URL (xiaozhi-server: ws://HOST:8000/xiaozhi/v1/)",
    )
    where.add_argument("--token", help="token for --ws-url, sent as 'Authorization: Bearer TOKEN'")
    where.add_argument(
        "--ca",
        type=Path,
        metavar="FILE",
        help="trust this certificate for wss:// and https:// (xiaozhi-server cert's server.crt)",
    )
    where.add_argument(
        "--insecure",
        action="store_true",
        help="wss:// and https:// without checking the certificate (testing only)",
    )
    where.add_argument(
        "--transport",
        choices=("auto", "websocket", "mqtt"),
        default="auto",
        help="auto: as the OTA answer says (an 'mqtt' section means MQTT + UDP, like the firmware)",
    )
    where.add_argument(
        "--udp-loss",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="MQTT + UDP: lose this fraction of the sent audio datagrams on purpose",
    )
    where.add_argument(
        "--udp-reorder",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="MQTT + UDP: send this fraction of the audio datagrams after the next one",
    )
    where.add_argument(
        "--protocol-version",
        type=int,
        choices=(1, 2, 3),
        help="binary audio framing (default: what the OTA answer says, else 1)",
    )
    speech = p.add_argument_group("what to say")
    speech.add_argument(
        "--say", action="append", default=[], metavar="TEXT", help="speak TEXT (flite); repeatable"
    )
    speech.add_argument(
        "--wav",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="speak a 16-bit PCM WAV file; repeatable",
    )
    speech.add_argument(
        "--turns", type=int, default=1, metavar="N", help="repeat the utterances this often"
    )
    speech.add_argument(
        "--think", type=float, default=1.0, metavar="S", help="pause between turns, s"
    )
    speech.add_argument("--ptt", action="store_true", help="push-to-talk (manual listening mode)")
    speech.add_argument(
        "--wake-word",
        metavar="TEXT",
        help="start each conversation with wake word TEXT instead of a button click; a greeting "
        "the server plays first is waited out",
    )
    speech.add_argument(
        "--abort-after", type=float, metavar="S", help="barge in S s after the reply's first audio"
    )
    speech.add_argument(
        "--reply-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="give up when the server sends nothing for S s while a reply is due (a reply that "
        "keeps streaming never times out)",
    )
    board = p.add_argument_group("the simulated board")
    board.add_argument("--aec", action="store_true", help="device AEC: realtime listening mode")
    board.add_argument(
        "--fast", action="store_true", help="send scripted speech faster than real time"
    )
    board.add_argument(
        "--legacy-iot",
        action="store_true",
        help="a legacy IoT build (firmware 1.7.7): 'iot' messages, no MCP",
    )
    board.add_argument(
        "--glyph-push", action="store_true", help="announce features.glyph_push (firmware 2.4+)"
    )
    board.add_argument(
        "--channel-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="reopen the channel when the server was silent this long (the firmware's rule)",
    )
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)"
    )


@dataclass(frozen=True)
class RunSettings:
    """The shared options in typed form (times in seconds)."""

    ota_url: str | None = None
    ws_url: str | None = None
    token: str | None = None
    protocol_version: int | None = None
    say: tuple[str, ...] = ()
    wav: tuple[Path, ...] = ()
    turns: int = 1
    think_s: float = 1.0
    mode: Mode = "click"
    wake_word: str = DEFAULT_WAKE_WORD
    abort_after_s: float | None = None
    reply_timeout_s: float = 30.0
    aec: bool = False
    fast: bool = False
    legacy_iot: bool = False
    glyph_push: bool = False
    channel_timeout_s: float = 120.0
    firmware: str | None = None
    transport: str = "auto"
    udp_loss: float = 0.0
    udp_reorder: float = 0.0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunSettings:
        mode: Mode = "ptt" if args.ptt else ("wake" if args.wake_word else "click")
        tls.configure(getattr(args, "ca", None), insecure=getattr(args, "insecure", False))
        return cls(
            ota_url=args.ota_url,
            ws_url=args.ws_url,
            token=args.token,
            protocol_version=args.protocol_version,
            say=tuple(args.say),
            wav=tuple(args.wav),
            turns=args.turns,
            think_s=args.think,
            mode=mode,
            wake_word=args.wake_word or DEFAULT_WAKE_WORD,
            abort_after_s=args.abort_after,
            reply_timeout_s=args.reply_timeout,
            aec=args.aec,
            fast=args.fast,
            legacy_iot=args.legacy_iot,
            glyph_push=args.glyph_push,
            channel_timeout_s=args.channel_timeout,
            firmware=getattr(args, "firmware", None),
            transport=getattr(args, "transport", "auto"),
            udp_loss=getattr(args, "udp_loss", 0.0),
            udp_reorder=getattr(args, "udp_reorder", 0.0),
        )

    def device_options(self, **extra: object) -> DeviceOptions:
        opts = DeviceOptions(
            ota_url=self.ota_url,
            ws_url=self.ws_url,
            token=self.token,
            protocol_version=self.protocol_version,
            aec=self.aec,
            fast=self.fast,
            channel_timeout_s=self.channel_timeout_s,
            legacy_iot=self.legacy_iot,
            glyph_push=self.glyph_push,
            firmware=self.firmware,
            transport=self.transport,
            udp_loss=self.udp_loss,
            udp_reorder=self.udp_reorder,
        )
        for key, value in extra.items():
            setattr(opts, key, value)
        return opts

    def script(self, utterances: list[Utterance]) -> Script:
        return Script(
            utterances,
            turns=self.turns,
            mode=self.mode,
            wake_word=self.wake_word,
            think_s=self.think_s,
            abort_after_s=self.abort_after_s,
            turn_timeout_s=self.reply_timeout_s,
        )

    async def utterances(self) -> list[Utterance]:
        """``--say`` texts spoken with flite, then the ``--wav`` files."""
        utts = [await synthesize(text) for text in self.say]
        return utts + [utterance_from_wav(path) for path in self.wav]
