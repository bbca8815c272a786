"""``xiaozhi-conformance server``: run the server checks and print the report."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from conformance.audio import SpeechUnavailable
from conformance.report import Group, ItemResult, Status, format_report, junit_xml, passed
from conformance.server.check import check_run
from conformance.server.items import ALL_ITEMS, ITEMS, TURN_ITEMS
from conformance.server.runner import RunConfig, run_server_checks
from protocol.errors import CodecUnavailable


def selected_items(items: list[int] | None, groups: list[str] | None) -> tuple[int, ...]:
    """The items of ``--item``/``--group`` (all when neither is given); ValueError names an
    unknown item."""
    unknown = sorted(set(items or ()) - set(ALL_ITEMS))
    if unknown:
        raise ValueError(f"unknown item(s) {unknown}; items are 1-{max(ALL_ITEMS)}")
    chosen = set(items or ())
    chosen |= {n for n, spec in ITEMS.items() if groups and spec.group.value in groups}
    return tuple(sorted(chosen)) if chosen else ALL_ITEMS


def _turn_note(results: list[ItemResult]) -> str | None:
    turns = [r for r in results if r.group is Group.TURN]
    if turns and all(r.status is Status.FAIL for r in turns):
        return (
            "note: no voice turn was answered, so every turn check failed; the protocol "
            "checks above do not depend on that (is the server's speech recognition working?)"
        )
    return None


def run_server_check(args: argparse.Namespace) -> int:
    if not args.ws_url.startswith(("ws://", "wss://")):
        print(
            f"error: WS_URL must start with ws:// or wss://, got {args.ws_url!r}", file=sys.stderr
        )
        return 2
    try:
        items = selected_items(args.items, args.groups)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    idle_wait = args.idle_limit + 10.0 if args.idle_wait is None else args.idle_wait
    cfg = RunConfig(
        ws_url=args.ws_url,
        ota_url=args.ota_url,
        token=args.token,
        items=items,
        idle_limit_s=args.idle_limit,
        idle_wait_s=idle_wait,
        answer_timeout_s=args.answer_timeout,
        greeting_wait_s=args.greeting_wait,
    )
    if 15 in items and idle_wait > 0 and not args.json:
        print(
            f"measuring the idle close: the idle session waits up to {idle_wait:g} s "
            "(--idle-wait 0 skips it)",
            flush=True,
        )
    started = time.monotonic()
    try:
        results = check_run(asyncio.run(run_server_checks(cfg)))
    except (SpeechUnavailable, CodecUnavailable) as exc:
        print(f"error: cannot make test audio: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if args.json:
        for r in results:
            print(json.dumps(r.to_json(), ensure_ascii=False))
    else:
        print(format_report(results))
        note = _turn_note(results) if set(TURN_ITEMS) & set(items) else None
        if note:
            print(note)
        print(f"run took {time.monotonic() - started:.1f} s")
    if args.junit:
        args.junit.write_text(junit_xml(results, suite="xiaozhi-server-conformance"), "utf-8")
    return 0 if passed(results) else 1
