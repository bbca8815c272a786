"""``xiaozhi-server`` (also ``python -m server``): run the server, or a maintenance subcommand.

    xiaozhi-server [--config FILE] [--port N] [--http-port N] [--log-level L]
    xiaozhi-server [--config FILE] models ...      # download/check models
    xiaozhi-server [--config FILE] devices ...     # list/bind boards

The server runs in the foreground until Ctrl-C or SIGTERM and then stops cleanly (exit 0).
Start-up problems (bad config, port in use, missing model) print one clear line and exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from server.config import Settings, load_settings

logger = logging.getLogger(__name__)

COMMANDS = ("models", "devices")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xiaozhi-server",
        description="Offline voice-assistant server for xiaozhi-esp32 boards.",
    )
    parser.add_argument("--config", type=Path, help="YAML settings file")
    parser.add_argument("--port", type=int, help="WebSocket port (default 8000; 0 = any free)")
    parser.add_argument("--http-port", type=int, help="HTTP/OTA port (default 8003)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    parser.add_argument("command", nargs="?", choices=COMMANDS, help="maintenance subcommand")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad field and why."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ())) or "(top level)"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if args.log_level:
        overrides["log_level"] = args.log_level.upper()
    settings = load_settings(args.config, **overrides)
    update: dict[str, Any] = {}
    if args.port is not None:
        update["websocket"] = settings.websocket.model_copy(update={"port": args.port})
    if args.http_port is not None:
        update["ota"] = settings.ota.model_copy(update={"port": args.http_port})
    if update:
        settings = settings.model_copy(update=update)
        Settings.model_validate(settings.model_dump())  # re-check overridden fields
    return settings


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM (or cancellation), then stop cleanly."""
    from server.app import Server
    from server.http import board_urls

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not main thread/Windows
            loop.add_signal_handler(sig, stop.set)
    server = Server(settings)
    await server.start()
    # Models, grammars and modules live as long as the process: keep them out of the cyclic
    # garbage collector's full passes, which then take ~1/10 the time (fewer event-loop pauses).
    gc.collect()
    gc.freeze()
    try:
        print(
            f"xiaozhi-server ready: WebSocket port {server.ws_port}, HTTP port {server.http_port}"
        )
        for line in board_urls(settings, server.ws_port, server.http_port):
            print("  " + line)
        sys.stdout.flush()
        await stop.wait()
        logger.info("stopping")
    finally:
        await server.stop()


def _fail(message: str) -> int:
    print(f"xiaozhi-server: error: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``xiaozhi-server`` and ``python -m server``; returns the exit code."""
    from server.providers.base import ProviderError

    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except FileNotFoundError as exc:
        return _fail(str(exc))
    except ValidationError as exc:
        return _fail(f"bad configuration: {describe_validation_error(exc)}")
    except yaml.YAMLError as exc:
        return _fail(f"config file {args.config} is not valid YAML: {exc}".replace("\n", " "))

    if args.command == "models":
        from server.models_download import main_models

        return int(main_models(list(args.args)))
    if args.command == "devices":
        from server.http import run_devices_command

        return int(run_devices_command(list(args.args), settings))

    _configure_logging(settings.log_level)
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return 0
    except ProviderError as exc:
        return _fail(
            f"{exc} (run `make setup` to fetch the default models)"
            if "make setup" not in str(exc)
            else str(exc)
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return _fail(
                f"port in use ({exc.strerror}); choose another with --port / --http-port "
                "or stop the other server"
            )
        return _fail(f"cannot start: {exc}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
