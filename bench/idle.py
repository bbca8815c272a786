"""Idle connections and connection bursts against a server subprocess.

* idle: open N WebSocket connections, each with the hello exchange done, hold them (no audio);
  server RSS per idle connection = (RSS held − RSS before) / N; thread count (/proc status);
  RSS after all close (memory returned?); then a second wave of N (memory reused, no ratchet?).
* burst: 50 devices connect at once; P95 time from TCP connect start to the server hello.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from typing import Any

import websockets

from bench.serverproc import ServerProcess
from bench.turns import mark, pct
from protocol.handshake import device_hello, upgrade_headers
from protocol.messages import encode_message

HELLO = encode_message(device_hello("2.4.2", 1))
"""The hello of a firmware 2.4.2 board on binary protocol 1."""


def _raise_nofile(want: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def _connect(url: str, i: int, timeout_s: float = 20.0) -> tuple[Any, float]:
    t0 = time.monotonic()
    headers = upgrade_headers(
        device_id=f"02:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
        client_id=f"bench-{i}",
        protocol_version=1,
    )
    ws = await websockets.connect(
        url, additional_headers=headers, open_timeout=timeout_s, ping_interval=None, max_queue=4
    )
    await ws.send(HELLO)
    async with asyncio.timeout(timeout_s):
        while True:
            msg = await ws.recv()
            if isinstance(msg, str) and json.loads(msg).get("type") == "hello":
                return ws, (time.monotonic() - t0) * 1000


async def _idle(srv: ServerProcess, n: int) -> dict[str, Any]:
    await asyncio.sleep(1.0)
    before, threads0 = srv.rss_kib(), srv.threads()
    conns: list[Any] = []
    errors = 0
    try:
        for start in range(0, n, 50):  # 50 at a time: a steady ramp, not a burst
            batch = await asyncio.gather(
                *(_connect(srv.ws_url, i) for i in range(start, min(n, start + 50))),
                return_exceptions=True,
            )
            for item in batch:
                if isinstance(item, BaseException):
                    errors += 1
                else:
                    conns.append(item[0])
        await asyncio.sleep(2.0)
        held, threads = srv.rss_kib(), srv.threads()
        fds = srv.fds()
    finally:
        await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    await asyncio.sleep(3.0)
    after = srv.rss_kib()
    per = (held - before) / len(conns) if conns else None
    return {
        "requested": n,
        "held": len(conns),
        "errors": errors,
        "rss_before_kib": before,
        "rss_held_kib": held,
        "rss_after_close_kib": after,
        "rss_per_conn_kib": round(per, 1) if per is not None else None,
        "threads_before": threads0,
        "threads_held": threads,
        "server_fds_held": fds,
    }


async def _burst(srv: ServerProcess, n: int) -> dict[str, Any]:
    results = await asyncio.gather(
        *(_connect(srv.ws_url, 100_000 + i) for i in range(n)), return_exceptions=True
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    await asyncio.gather(*(ws.close() for ws, _ in ok), return_exceptions=True)
    return {"n": n, "errors": n - len(ok), "hello_ms": pct([ms for _, ms in ok])}


def run(quick: bool = False) -> dict[str, Any]:
    n = 100 if quick else 1000
    limit = _raise_nofile(n + 512)
    with ServerProcess(nofile=n + 512) as srv:
        engines = srv.engines()
        idle = asyncio.run(_idle(srv, n))
        again = asyncio.run(_idle(srv, n))
        burst = asyncio.run(_burst(srv, 50))
    grown = idle["rss_after_close_kib"] - idle["rss_before_kib"]
    returned = grown <= 0.25 * max(1, idle["rss_held_kib"] - idle["rss_before_kib"])
    no_thread_per_conn = idle["threads_held"] - idle["threads_before"] < max(8, n // 10)
    per = idle["rss_per_conn_kib"]
    p95 = burst["hello_ms"]["p95"]
    rows = [
        {
            "metric": "idle connections held",
            "value": idle["held"],
            "target": "≥1000",
            "result": mark(idle["held"], 1000, le=False),
        },
        {
            "metric": "RSS per idle conn (KiB)",
            "value": per,
            "target": "≤200",
            "result": mark(per, 200),
        },
        {
            "metric": "server threads before/held",
            "value": f"{idle['threads_before']}/{idle['threads_held']}",
            "target": "no thread per conn",
            "result": "pass" if no_thread_per_conn else "MISS",
        },
        {
            "metric": "RSS before/held/after close (KiB)",
            "value": "/".join(
                str(idle[k]) for k in ("rss_before_kib", "rss_held_kib", "rss_after_close_kib")
            ),
            "target": "returned after close",
            "result": "pass" if returned else "MISS",
        },
        {
            "metric": "2nd wave: RSS held/after close (KiB)",
            "value": f"{again['rss_held_kib']}/{again['rss_after_close_kib']}",
            "target": "held ≤ 1st wave's (reused)",
            "result": "pass" if again["rss_held_kib"] <= idle["rss_held_kib"] * 1.02 else "MISS",
        },
        {
            "metric": "burst 50: hello P50/P95 ms",
            "value": f"{burst['hello_ms']['p50']}/{p95}",
            "target": "P95≤100",
            "result": mark(p95, 100) if not burst["errors"] else "MISS",
        },
    ]
    return {
        "client_nofile": limit,
        "engines": engines,
        "idle": idle,
        "second_wave": again,
        "burst": burst,
        "rows": rows,
    }
