"""``xiaozhi-server recordings list|delete``: stored recordings from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys

from server.config import Settings
from server.recordings.store import RecordingStore


def main_recordings(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(
        prog="xiaozhi-server recordings",
        description="List or erase stored recordings (transcribe.recordings.dir).",
        epilog="examples:\n  xiaozhi-server recordings list --device aa:bb:cc:dd:ee:ff\n"
        "  xiaozhi-server recordings delete --user alice",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True)
    for name, text in (
        ("list", "list recordings"),
        ("delete", "erase every recording of one device or user (audited)"),
    ):
        cmd = sub.add_parser(name, help=text)
        who = cmd.add_mutually_exclusive_group(required=name == "delete")
        who.add_argument("--device", help="device id (Device-Id)")
        who.add_argument("--user", help="user (the JWT sub)")
    args = parser.parse_args(argv)
    store = RecordingStore(settings.transcribe.recordings.dir)
    if args.action == "list":
        for rec in store.select(device_id=args.device, user=args.user):
            print(json.dumps(rec.to_json(), ensure_ascii=False))
        return 0
    by = f"cli (uid {os.getuid()})" if hasattr(os, "getuid") else "cli"
    count = store.delete(device_id=args.device, user=args.user, by=by)
    what = f"device {args.device}" if args.device else f"user {args.user}"
    print(f"deleted {count} recording(s) of {what}", file=sys.stderr)
    return 0
