"""``xiaozhi-conformance device``: serve the recording harness, let the device talk, report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shlex
import signal
import sys

from conformance.device.check import NO_CONTACT, check_device
from conformance.device.harness import DeviceCheckServer
from conformance.device.harness_config import WILDCARD_HOSTS, HarnessConfig
from conformance.report import format_report, junit_xml, passed


def _local_addresses() -> list[str]:
    from server.http.urls import local_ipv4_addresses

    return local_ipv4_addresses()


def announce(server: DeviceCheckServer) -> list[str]:
    """The lines telling the user where the harness listens and which OTA URL to enter."""
    cfg = server.cfg
    lines = [
        f"conformance harness on {cfg.host}: OTA port {server.port}, "
        f"WebSocket port {server.ws_port}",
        "OTA URL to enter on the board:",
    ]
    addresses = _local_addresses() if cfg.host in WILDCARD_HOSTS else []
    for url in server.ota_urls(addresses):
        note = "  (this machine only)" if "//127." in url else ""
        lines.append(f"  {url}{note}")
    return lines


async def _drive(args: argparse.Namespace, server: DeviceCheckServer) -> None:
    for line in announce(server):
        print(line, flush=True)
    if args.device_command:
        cmd = args.device_command.replace("{ota_url}", server.ota_url)
        print(f"running: {cmd}", flush=True)
        proc = await asyncio.create_subprocess_exec(*shlex.split(cmd))
        try:
            code = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
        print(f"device command exited with {code}", flush=True)
        return
    print(f"waiting {args.wait:g} s for the board (Ctrl-C ends early)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), args.wait)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.remove_signal_handler(signal.SIGINT)


def run_device_check(args: argparse.Namespace) -> int:
    config = HarnessConfig(
        host=args.host,
        port=args.port,
        ws_port=args.ws_port if args.ws_port is not None else (args.port + 1 if args.port else 0),
        ota_failures=args.ota_failures,
        activation_pending=args.activation_pending,
        activation=True,
        expected_channel_timeout_s=args.channel_timeout,
    )

    async def drive(server: DeviceCheckServer) -> None:
        await _drive(args, server)

    try:
        results = asyncio.run(check_device(drive, config))
    except OSError as exc:
        print(f"error: cannot listen on {args.host} port {args.port}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if args.json:
        for r in results:
            print(json.dumps(r.to_json(), ensure_ascii=False))
    else:
        print(format_report(results))
    if args.junit:
        args.junit.write_text(junit_xml(results, suite="xiaozhi-device-conformance"), "utf-8")
    if all(r.text == NO_CONTACT for r in results):
        print(
            "error: no device contacted the harness: check the OTA URL entered on the board, "
            "that it is on the same network, and the firewall (the ports above)",
            file=sys.stderr,
        )
        return 1
    return 0 if passed(results) else 1
