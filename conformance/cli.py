"""Command line of the conformance suite (``xiaozhi-conformance`` / ``python -m conformance``).

xiaozhi-conformance server ws://host:8000/xiaozhi/v1/ --ota-url http://host:8003/xiaozhi/ota/
xiaozhi-conformance device --command "xiaozhi-device --ota-url {ota_url} ..."
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conformance.report import ALL_ITEMS, ItemResult, format_report, junit_xml, passed

logger = logging.getLogger(__name__)

MIN_IDLE_WAIT_S = 125.0
"""Item 15's idle close is only measured when we may wait past the 120 s limit."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xiaozhi-conformance",
        description="Check a xiaozhi server or device against protocol.md §9/§10.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    srv = sub.add_parser("server", help="check a server against protocol.md §9 (acts as a board)")
    srv.add_argument("ws_url", metavar="WS_URL", help="ws:// or wss:// URL of the endpoint")
    srv.add_argument("--ota-url", help="OTA/config URL (items 1-4 and 18 need it)")
    srv.add_argument("--token", help="bearer token (default: the OTA answer's websocket.token)")
    srv.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML here")
    srv.add_argument(
        "--item",
        type=int,
        action="append",
        dest="items",
        metavar="N",
        choices=ALL_ITEMS,
        help="run only item N (repeatable; default: all)",
    )
    srv.add_argument(
        "--idle-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help=f"measure the idle close of item 15 (needs ≥ {MIN_IDLE_WAIT_S:.0f})",
    )
    srv.add_argument(
        "--answer-timeout",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="how long to wait for each turn to be answered (default 20)",
    )
    dev = sub.add_parser("device", help="check a device: serve OTA + WebSocket and watch it")
    dev.add_argument(
        "--command", help="shell command that runs the device; {ota_url} is replaced by our URL"
    )
    dev.add_argument(
        "--wait",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="without --command: how long to let a board talk to us (default 300)",
    )
    return parser


async def _run_server(args: argparse.Namespace) -> list[ItemResult]:
    from conformance.server_check import check_run
    from conformance.server_runner import RunConfig, run_server_checks

    idle = args.idle_wait if args.idle_wait >= MIN_IDLE_WAIT_S else 0.0
    if 0 < args.idle_wait < MIN_IDLE_WAIT_S:
        print(
            f"note: --idle-wait {args.idle_wait:g} < {MIN_IDLE_WAIT_S:.0f} s: "
            "idle close not measured"
        )
    cfg = RunConfig(
        ws_url=args.ws_url,
        ota_url=args.ota_url,
        token=args.token,
        items=tuple(sorted(set(args.items))) if args.items else ALL_ITEMS,
        idle_wait_s=idle,
        answer_timeout_s=args.answer_timeout,
    )
    return check_run(await run_server_checks(cfg))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns 0 only when every applicable item passed (2 = usage/setup error)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "device":
        return _device(args)
    if not args.ws_url.startswith(("ws://", "wss://")):
        print(
            f"error: WS_URL must start with ws:// or wss://, got {args.ws_url!r}", file=sys.stderr
        )
        return 2
    from conformance.audio import SpeechUnavailable
    from protocol.errors import CodecUnavailable

    started = time.monotonic()
    try:
        results = asyncio.run(_run_server(args))
    except (SpeechUnavailable, CodecUnavailable) as exc:
        print(f"error: cannot make test audio: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(format_report(results))
    print(f"run took {time.monotonic() - started:.1f} s")
    if args.junit:
        args.junit.write_text(junit_xml(results), encoding="utf-8")
    return 0 if passed(results) else 1


def _device(args: argparse.Namespace) -> int:
    """Serve the device checker (conformance.device_check) and drive or await the device."""
    from conformance import device_check

    async def drive(server: Any) -> None:
        if args.command:
            cmd = args.command.replace("{ota_url}", server.ota_url)
            print(f"running: {cmd}")
            proc = await asyncio.create_subprocess_exec(*shlex.split(cmd))
            await proc.wait()
        else:
            print(f"point the board's OTA URL at {server.ota_url}; waiting {args.wait:g} s")
            await asyncio.sleep(args.wait)

    try:
        results = asyncio.run(device_check.check_device(drive))
    except KeyboardInterrupt:
        return 130
    print(device_check.format_report(results))
    return 0 if all(r.status != "fail" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
