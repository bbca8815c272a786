"""``xiaozhi-server devices list|bind CODE``: inspect and bind boards in the device registry."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from server.config import Settings
from server.devices import DeviceRecord, DeviceRegistry, normalise_code


def _when(epoch_s: float | None) -> str:
    if epoch_s is None:
        return "-"
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def describe(record: DeviceRecord) -> str:
    """One human line for a device."""
    if record.bound:
        state = f"bound {_when(record.bound_at)}"
    elif record.activation_code:
        state = f"pending code {record.activation_code}"
    else:
        state = "not bound"
    serial = f" serial={record.serial}" if record.serial else ""
    return (
        f"{record.device_id}  board={record.board or '?'} firmware={record.firmware or '?'}"
        f"{serial}  {state}  last seen {_when(record.last_seen)}"
    )


DESCRIPTION = """\
Inspect and bind boards in the device registry (ota.db_path). Every board that POSTs the OTA URL
is recorded. With activation on (XIAOZHI_OTA__ACTIVATION=true) a new board shows and speaks a
6-digit code until it is bound here.
"""
EPILOG = """\
examples:
  xiaozhi-server devices list
  xiaozhi-server devices bind 123456
  xiaozhi-server --config config.yaml devices list     the registry named in that file
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xiaozhi-server devices",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser(
        "list",
        help="show every board the OTA endpoint has seen",
        description="Show every board the OTA endpoint has seen, one line each.",
        epilog="example:\n  xiaozhi-server devices list",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bind = sub.add_parser(
        "bind",
        help="bind the board showing this 6-digit activation code",
        description="Bind the board that shows this activation code (it then stops asking).",
        epilog="example:\n  xiaozhi-server devices bind 123456",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bind.add_argument("code", help="the 6 digits the board shows and speaks")
    return parser


async def _list(registry: DeviceRegistry) -> int:
    records = await registry.list()
    if not records:
        print(f"no devices recorded in {registry.path}")
    for record in records:
        print(describe(record))
    return 0


async def _bind(registry: DeviceRegistry, code: str) -> int:
    if len(normalise_code(code)) != 6:
        print(f"error: activation code must be 6 digits, got {code!r}", file=sys.stderr)
        return 1
    record = await registry.bind(code)
    if record is None:
        print(f"error: no pending device has activation code {code}", file=sys.stderr)
        return 1
    print(f"bound {describe(record)}")
    return 0


def run_devices_command(argv: list[str], settings: Settings) -> int:
    """Run ``devices list`` / ``devices bind CODE`` (argv excludes ``devices``); returns the exit
    code: 0 ok, 1 unknown code or database error, 2 usage error. Not callable from a running loop
    (use ``asyncio.to_thread``)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    path = settings.ota.db_path
    if args.action == "list" and not settings.storage_url and not path.exists():
        print(f"no devices recorded yet ({path} does not exist)")
        return 0

    async def main() -> int:
        from server.storage import open_storage  # PostgreSQL when storage_url is set

        registry = await open_storage(settings.storage_url, path)
        try:
            if args.action == "list":
                return await _list(registry)
            return await _bind(registry, args.code)
        finally:
            await registry.close()

    try:
        return asyncio.run(main())
    except Exception as exc:  # sqlite3.Error, OSError: unusable database
        print(f"error: device database {path}: {exc}", file=sys.stderr)
        return 1
