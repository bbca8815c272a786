"""``xiaozhi-server`` (also ``python -m server``): run the server, or a maintenance subcommand.

    xiaozhi-server [--config FILE] [--port N] [--http-port N] [--log-level L]
    xiaozhi-server [--config FILE] devices list|bind CODE
    xiaozhi-server models list|download NAME
    xiaozhi-server commands [--markdown]
    xiaozhi-server config-docs [--write|--check]

The server runs in the foreground until Ctrl-C or SIGTERM and then stops cleanly (exit 0).
Exit status 2: the configuration is wrong (unknown key or variable, bad value, unknown voice or
provider), with one line naming the key; 1: another start-up problem (port in use, missing
model). Never a traceback.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from server.config import Settings, load_settings
from server.errors import ConfigError

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2

DESCRIPTION = """\
Offline voice-assistant server for xiaozhi-esp32 boards and the xiaozhi-device simulator.

Without a command it serves the WebSocket endpoint (boards' audio and messages) and the HTTP side
(OTA/config URL, activation, /healthz, /metrics) until Ctrl-C. At start it prints the OTA URL to
enter on the board. Settings: a YAML file (--config), XIAOZHI_<SECTION>__<KEY> environment
variables, the options below; reference in docs/configuration.md.
"""

EPILOG = """\
examples:
  xiaozhi-server                                   serve on ports 8000 (WebSocket) and 8003 (HTTP)
  xiaozhi-server --config config.yaml --log-level DEBUG
  XIAOZHI_DIALOGUE__PROVIDER=openai xiaozhi-server  answer free text with an LLM (docs/llm.md)
  xiaozhi-server commands                          what the offline grammar understands
  xiaozhi-server devices list                      boards the OTA endpoint has seen

exit status: 0 stopped cleanly, 1 start-up failure (port in use, missing model),
2 configuration error (the message names the key).
"""

COMMAND_HELP = {
    "devices": (
        "list the boards the OTA endpoint has seen, or bind one by its activation code",
        "examples:\n  xiaozhi-server devices list\n  xiaozhi-server devices bind 123456",
    ),
    "models": (
        "list or download optional speech models (the defaults need none)",
        "examples:\n  xiaozhi-server models list\n  xiaozhi-server models --help",
    ),
    "commands": (
        "print the sentences the offline grammar understands (simulator's demo board)",
        "examples:\n  xiaozhi-server commands\n  xiaozhi-server commands --markdown > commands.md",
    ),
    "recordings": (
        "list or erase stored recordings of one device or user (audited)",
        "examples:\n  xiaozhi-server recordings list\n"
        "  xiaozhi-server recordings delete --device ID",
    ),
    "config-docs": (
        "print the configuration reference generated from the settings models",
        "examples:\n  xiaozhi-server config-docs\n  xiaozhi-server config-docs --check",
    ),
    "cert": (
        "generate a self-signed TLS certificate and key (wss://, https://), print the fingerprint",
        "examples:\n  xiaozhi-server cert\n  xiaozhi-server cert --name xiaozhi.lan --force",
    ),
}
DELEGATED = ("devices", "models", "config-docs", "recordings", "cert")
"""Subcommands that parse their own arguments (their --help is their own)."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks; shows a default when the option has a real one (the
    settings' defaults are written into the help texts)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if default not in (None, False, argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xiaozhi-server",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="YAML settings file (example: config.example.yaml; unknown keys are an error)",
    )
    parser.add_argument(
        "--port",
        type=int,
        metavar="N",
        help="WebSocket port, overrides websocket.port (default 8000; 0 = any free port)",
    )
    parser.add_argument(
        "--http-port",
        type=int,
        metavar="N",
        help="HTTP port for OTA, /healthz and /metrics, overrides ota.port (default 8003)",
    )
    parser.add_argument(
        "--wyoming-port",
        type=int,
        metavar="N",
        help="also offer the server's speech-to-text and text-to-speech to Home Assistant as a "
        "Wyoming service on port N (usually 10300; 0 = any free port), overrides wyoming.port "
        "(default: off; needs pip install 'xiaozhi-py[wyoming]')",
    )
    parser.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        type=str.upper,
        help="log verbosity on stderr, overrides log_level (default INFO)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="?",
        const=0,
        metavar="N",
        help="run N full servers as child processes, worker i on WebSocket port PORT+i and HTTP "
        "port HTTP_PORT+i (put nginx in front: deploy/nginx/); a worker that dies is restarted; "
        "without N (or 0): one per core; without the flag: one server in this process",
    )
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="with --workers: every worker listens on the same WebSocket and HTTP ports "
        "(SO_REUSEPORT, Linux) and the kernel spreads the boards over them, no nginx needed; "
        "/metrics then answers for whichever worker takes the request",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (help_text, epilog) in COMMAND_HELP.items():
        delegated = name in DELEGATED
        command = sub.add_parser(
            name,
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ".",
            epilog=epilog,
            formatter_class=HelpFormatter,
            add_help=not delegated,
        )
        if delegated:
            command.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        elif name == "commands":
            command.add_argument(
                "--markdown", action="store_true", help="print Markdown (docs/commands.md)"
            )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if args.log_level:
        overrides["log_level"] = args.log_level
    settings = load_settings(args.config, **overrides)
    update: dict[str, Any] = {}
    socket_update: dict[str, Any] = {}
    if args.port is not None:
        socket_update["port"] = args.port
    if args.reuse_port:
        socket_update["reuse_port"] = True
    if socket_update:
        update["websocket"] = settings.websocket.model_copy(update=socket_update)
    if args.http_port is not None:
        update["ota"] = settings.ota.model_copy(update={"port": args.http_port})
    if args.wyoming_port is not None:
        update["wyoming"] = settings.wyoming.model_copy(update={"port": args.wyoming_port})
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


def startup_warnings(settings: Settings, server: Any) -> list[str]:
    """Problems worth a line in the banner (the server has logged them at WARNING already): a
    chain that cannot answer what it hears, an LLM that is not reachable."""
    from server.providers.chain import check_chain

    p = server.providers
    if p is None:
        return []
    warnings = check_chain(p.asr, p.dialogue, p.tts, settings.asr.language)
    report = getattr(p.dialogue, "health_report", None)
    if report is not None:
        health = report()
        if health.get("status") == "degraded":
            warnings.append(
                f"the {health['provider']} LLM at {settings.dialogue.openai.base_url} is not "
                f"reachable ({health['reason']}): the local dialogue answers until it is "
                "(docs/llm.md)"
            )
    return warnings


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
        if server.wyoming_port:
            print(f"  Wyoming service for Home Assistant: port {server.wyoming_port}")
        for warning in startup_warnings(settings, server):
            print("  warning: " + warning)
        sys.stdout.flush()
        await stop.wait()
        logger.info("stopping")
    finally:
        await server.stop()


def _fail(message: str, status: int = EXIT_FAILED) -> int:
    print(f"xiaozhi-server: error: {message}", file=sys.stderr)
    return status


def _run_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    if args.command == "models":
        from server.models_download import main_models

        return int(main_models(list(args.args)))
    if args.command == "recordings":
        from server.recordings.cli import main_recordings

        return _exit_status(lambda: main_recordings(list(args.args), settings()))
    if args.command == "cert":
        from server.security.cli import main_cert

        return _exit_status(lambda: main_cert(list(args.args), settings()))
    if args.command == "config-docs":
        from server.config_docs import main as config_docs

        return _exit_status(lambda: config_docs(list(args.args)))
    if args.command == "commands":
        from server.spoken_commands import (
            command_groups,
            demo_board_tools,
            render_markdown,
            render_text,
        )

        groups = command_groups(demo_board_tools())
        print(render_markdown(groups) if args.markdown else render_text(groups), end="")
        return EXIT_OK
    from server.http import run_devices_command

    return int(run_devices_command(list(args.args), settings()))


def _exit_status(run: Callable[[], int]) -> int:
    try:
        return run()
    except SystemExit as exc:  # argparse inside a delegated command (usage error, --help)
        return exc.code if isinstance(exc.code, int) else EXIT_FAILED


def _load(args: argparse.Namespace) -> Settings:
    """Settings from the file, environment and options; raises ConfigError with one line."""
    from server.config_check import describe_validation_error

    try:
        return _settings(args)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    except ValidationError as exc:
        raise ConfigError(f"bad configuration: {describe_validation_error(exc)}") from None
    except yaml.YAMLError as exc:
        detail = str(exc).replace("\n", " ")
        raise ConfigError(f"config file {args.config} is not valid YAML: {detail}") from None


def _after_command(argv: list[str], command: str) -> list[str]:
    """Everything after the subcommand's name (its own parser reads it, ``--help`` included)."""
    takes_value = {"--config", "--port", "--http-port", "--wyoming-port", "--log-level"}
    for i, word in enumerate(argv):
        if word == command and (i == 0 or argv[i - 1] not in takes_value):
            return argv[i + 1 :]
    return []


def _supervise(argv: list[str], workers: int, settings: Settings) -> int:
    """``--workers N``: server.workers runs and restarts the worker processes."""
    from server.workers import default_workers, supervise

    ws = settings.websocket
    if ws.reuse_port and settings.mqtt.enabled:
        return _fail(
            "--reuse-port shares the WebSocket and HTTP ports only: a board's MQTT session and "
            "its UDP audio must reach the same worker. Run the workers on their own ports "
            "(--workers without --reuse-port) or turn mqtt.enabled off",
            EXIT_CONFIG,
        )
    try:
        return asyncio.run(
            supervise(argv, workers or default_workers(), ws.port, settings.ota.port,
                      ws.shutdown_grace_s, shared=ws.reuse_port)
        )  # fmt: skip
    except KeyboardInterrupt:
        return EXIT_OK
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``xiaozhi-server`` and ``python -m server``; returns the exit code."""
    from server.config_check import check_values
    from server.providers.base import ProviderError

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if args.command in DELEGATED:
        args.args = _after_command(argv, args.command)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command is not None:
            return _run_command(args, lambda: _load(args))
        settings = _load(args)
        check_values(settings)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)

    _configure_logging(settings.log_level)
    if args.workers is not None:
        return _supervise(argv, args.workers, settings)
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return EXIT_OK
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except ProviderError as exc:
        return _fail(str(exc))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return _fail(
                f"port in use ({exc.strerror}); choose another with --port / --http-port "
                "or stop the other server"
            )
        return _fail(f"cannot start: {exc}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
