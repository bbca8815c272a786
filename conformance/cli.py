"""Command line of the conformance suite (xiaozhi-conformance, or python -m conformance)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from conformance.report import Group

SERVER_EXAMPLE = """\
checks run as a board would: OTA, then several WebSocket sessions. Protocol checks need no
working speech recognition; turn checks need answered voice turns. The idle session waits up to
--idle-wait seconds alongside the other checks.

example:
  xiaozhi-conformance server ws://127.0.0.1:8000/xiaozhi/v1/ \\
      --ota-url http://127.0.0.1:8003/xiaozhi/ota/
  xiaozhi-conformance server ws://host:8000/xiaozhi/v1/ --group protocol --idle-wait 0
"""

DEVICE_EXAMPLE = """\
starts a recording xiaozhi server (OTA + WebSocket) and prints the OTA URL to enter on the
board; boot the board, then talk to it (click, wake word, push-to-talk). Press Ctrl-C to end
early and get the report.

example:
  xiaozhi-conformance device                       (a real board on the LAN)
  xiaozhi-conformance device --host 127.0.0.1 --port 0 --ws-port 0 --channel-timeout 2 \\
      --command "xiaozhi-device --ota-url {ota_url} --channel-timeout 2 --conformance-flows"
"""

DEFAULT_DEVICE_PORT = 8013
"""OTA port of the device check's harness (the WebSocket port is the next one)."""


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0 seconds, got {text}")
    return value


def _server_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    srv = sub.add_parser(
        "server",
        help="check a server (the suite acts as a board)",
        description="Check a xiaozhi server against protocol.md section 9.",
        epilog=SERVER_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    srv.add_argument("ws_url", metavar="WS_URL", help="ws:// or wss:// URL of the endpoint")
    srv.add_argument("--ota-url", help="OTA/config URL (the OTA checks need it; default: none)")
    srv.add_argument("--token", help="bearer token (default: the OTA answer's websocket.token)")
    srv.add_argument(
        "--item",
        type=int,
        action="append",
        dest="items",
        metavar="N",
        help="run only item N (repeatable; default: all items)",
    )
    srv.add_argument(
        "--group",
        choices=[g.value for g in (Group.OTA, Group.PROTOCOL, Group.TURN)],
        action="append",
        dest="groups",
        help="run only the items of this group (repeatable; default: all groups)",
    )
    srv.add_argument(
        "--idle-limit",
        type=_seconds,
        default=120.0,
        metavar="SECONDS",
        help="an idle session must be closed within this (default: %(default)g)",
    )
    srv.add_argument(
        "--idle-wait",
        type=_seconds,
        metavar="SECONDS",
        help="how long the idle session waits for the close; 0 skips it (default: idle limit + 10)",
    )
    srv.add_argument(
        "--answer-timeout",
        type=_seconds,
        default=20.0,
        metavar="SECONDS",
        help="how long after the end of speech a turn may take to be answered "
        "(default: %(default)g)",
    )
    srv.add_argument(
        "--greeting-wait",
        type=_seconds,
        default=4.0,
        metavar="SECONDS",
        help="how long a greeting after listen detect may take to start (default: %(default)g)",
    )
    srv.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML here")
    srv.add_argument("--json", action="store_true", help="print the results as JSON lines")
    srv.add_argument(
        "--ca",
        type=Path,
        metavar="FILE",
        help="trust this certificate for wss:// and https:// (xiaozhi-server cert's server.crt)",
    )
    srv.add_argument(
        "--insecure",
        action="store_true",
        help="wss:// and https:// without checking the certificate (testing only)",
    )


def _device_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = sub.add_parser(
        "device",
        help="check a board or simulator (the suite acts as its server)",
        description="Check a xiaozhi board or simulator against protocol.md section 10.",
        epilog=DEVICE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dev.add_argument(
        "--host", default="0.0.0.0", help="address to listen on (default: %(default)s)"
    )
    dev.add_argument(
        "--port",
        type=int,
        default=DEFAULT_DEVICE_PORT,
        help="OTA (HTTP) port; 0 picks a free one (default: %(default)s)",
    )
    dev.add_argument(
        "--ws-port",
        type=int,
        help="WebSocket port; 0 picks a free one (default: the OTA port + 1)",
    )
    dev.add_argument(
        "--command",
        dest="device_command",
        metavar="COMMAND",
        help="shell command that runs the device; {ota_url} is replaced by the harness's OTA "
        "URL; the check ends when it exits (default: wait for a real board)",
    )
    dev.add_argument(
        "--wait",
        type=_seconds,
        default=300.0,
        metavar="SECONDS",
        help="without --command: how long to let a board talk to us (default: %(default)g)",
    )
    dev.add_argument(
        "--ota-failures",
        type=int,
        default=1,
        metavar="N",
        help="answer the first N OTA checks with HTTP 500 to see the retry (default: %(default)s)",
    )
    dev.add_argument(
        "--activation-pending",
        type=int,
        default=1,
        metavar="N",
        help="answer /activate N times with 202 before 200 (default: %(default)s)",
    )
    dev.add_argument(
        "--channel-timeout",
        type=_seconds,
        default=120.0,
        metavar="SECONDS",
        help="the board's channel inactivity rule to expect (default: %(default)g)",
    )
    dev.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML here")
    dev.add_argument("--json", action="store_true", help="print the results as JSON lines")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xiaozhi-conformance",
        description="Check a xiaozhi server or device against protocol.md sections 9 and 10.",
        epilog="run 'xiaozhi-conformance server --help' or '... device --help' for examples",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="subcommand", required=True, metavar="{server,device}")
    _server_parser(sub)
    _device_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; 0 only when every applicable item passed, 1 on failures, 2 on a usage or
    setup error."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.subcommand == "device":
        from conformance.device.command import run_device_check

        return run_device_check(args)
    from conformance.server.command import run_server_check
    from device import tls
    from device.errors import UsageError

    try:
        tls.configure(args.ca, insecure=args.insecure)
    except UsageError as exc:
        print(f"xiaozhi-conformance: {exc}", file=sys.stderr)
        return 2
    return run_server_check(args)


if __name__ == "__main__":
    sys.exit(main())
