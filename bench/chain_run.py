"""The measuring half of ``xiaozhi-bench chain``: probe connect/hello, then run the simulator
swarm (real-time paced Opus of real flite speech) at each N and judge capacity.

Times are device-side, in ms: ``connect_ms`` TCP + WebSocket upgrade, ``hello_ms`` device hello →
server hello; per turn ``endpoint_ms`` (end of the user's speech → ``stt``) and
``first_audio_ms`` (end of speech → first reply audio packet). A downlink frame is late when it
arrives more than 10 ms after its slot (``bench.downlink``). Capacity: the largest N whose P95
``first_audio_ms`` is within the target, with fewer late frames than ``late_pct_max`` and no
errors.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from bench.downlink import record_arrivals
from bench.stats import percentile
from device.app import Device
from device.arguments import RunSettings
from device.swarm import SwarmConfig, run_swarm
from device.wsclient import RawWebSocket
from protocol.handshake import device_hello, upgrade_headers
from protocol.messages import encode_message

FIRMWARE = "2.4.2"


@dataclass(frozen=True)
class ChainScript:
    """What every board does, the same for every server compared."""

    say: tuple[str, ...] = ("what time is it", "turn on the lamp")
    turns: int = 2
    """Rounds of the utterances per board."""
    think_s: float = 1.0
    sizes: tuple[int, ...] = (1, 5, 10)
    """Numbers of boards to try, in order."""
    target_p95_ms: float = 1500.0
    late_pct_max: float = 1.0
    hello_probes: int = 5
    ramp_s: float | None = None
    """Board starts spread over this many seconds (None: 0.1 s per board, at most 2 s)."""
    reply_timeout_s: float = 30.0
    warmup: bool = True
    """One untimed turn of one board first (caches, lazily loaded models, connection pools)."""


@dataclass
class ServerTarget:
    label: str
    ws_url: str | None = None
    ota_url: str | None = None
    token: str | None = None


@dataclass
class ChainResult:
    target: ServerTarget
    connect: dict[str, Any] = field(default_factory=dict)
    hello: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    capacity: int = 0

    def as_json(self) -> dict[str, Any]:
        t = self.target
        return {
            "label": t.label,
            "ws_url": t.ws_url,
            "ota_url": t.ota_url,
            "connect_ms": self.connect,
            "hello_ms": self.hello,
            "rows": self.rows,
            "capacity": self.capacity,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def pct(values: list[float]) -> dict[str, Any]:
    """Count, P50 and P95 (rounded to 0.1)."""
    return {
        "n": len(values),
        "p50": _round(percentile(values, 50)),
        "p95": _round(percentile(values, 95)),
    }


async def resolve_ws_url(target: ServerTarget) -> str:
    """The WebSocket URL: given, or what the OTA endpoint hands a booting board."""
    if target.ws_url:
        return target.ws_url
    settings = RunSettings(ota_url=target.ota_url, token=target.token)
    device = await Device.create(settings.device_options(realtime_playback=False), None)
    try:
        await device.boot()
        return str(device.identity.websocket["url"])
    finally:
        await device.close()


async def probe_hello(ws_url: str, token: str | None, count: int) -> tuple[list[float], ...]:
    """``count`` fresh connections, one after the other: (connect_ms list, hello_ms list)."""
    connects: list[float] = []
    hellos: list[float] = []
    hello = encode_message(device_hello(FIRMWARE, 1))
    for i in range(count):
        headers = upgrade_headers(
            device_id=f"02:00:00:00:{i // 256:02x}:{i % 256:02x}",
            client_id=str(uuid.uuid4()),
            protocol_version=1,
            token=token,
        )
        t0 = time.monotonic()
        ws = await RawWebSocket.connect(ws_url, headers, timeout_s=10.0)
        t1 = time.monotonic()
        try:
            await ws.send_text(hello)
            while True:
                message = await asyncio.wait_for(ws.recv(), 10.0)
                if isinstance(message, str) and json.loads(message).get("type") == "hello":
                    break
            t2 = time.monotonic()
        finally:
            ws.abort()
        connects.append((t1 - t0) * 1000)
        hellos.append((t2 - t1) * 1000)
    return connects, hellos


def _swarm_config(ws_url: str, target: ServerTarget, script: ChainScript, n: int) -> SwarmConfig:
    settings = RunSettings(
        ws_url=ws_url,
        token=target.token,
        say=script.say,
        turns=script.turns,
        think_s=script.think_s,
        reply_timeout_s=script.reply_timeout_s,
    )
    ramp = min(2.0, 0.1 * n) if script.ramp_s is None else script.ramp_s
    return SwarmConfig(settings, n=n, ramp_s=ramp)


async def run_size(
    ws_url: str, target: ServerTarget, script: ChainScript, n: int
) -> dict[str, Any]:
    """One swarm of ``n`` boards; the row of the table."""
    with record_arrivals() as arrivals:
        report = await run_swarm(_swarm_config(ws_url, target, script, n))
    devices = report["devices"]
    turns = [t for d in devices for t in d["turns"]]
    first = [t["first_audio_ms"] for t in turns if t["first_audio_ms"] is not None]
    endpoint = [t["endpoint_ms"] for t in turns if t["endpoint_ms"] is not None]
    reply = [
        t["first_audio_ms"] - t["endpoint_ms"]
        for t in turns
        if t["first_audio_ms"] is not None and t["endpoint_ms"] is not None
    ]
    expected = n * script.turns * len(script.say)
    late = arrivals.late()
    fa = pct(first)
    errors = sum(1 for d in devices if d["error"]) + max(0, expected - len(first))
    ok = (
        fa["p95"] is not None
        and fa["p95"] <= script.target_p95_ms
        and (late["late_pct"] or 0.0) < script.late_pct_max
        and errors == 0
    )
    return {
        "n": n,
        "turns": len(first),
        "errors": errors,
        "first_audio_ms": fa,
        "endpoint_ms": pct(endpoint),
        "stt_to_audio_ms": pct(reply),
        "late_pct": late["late_pct"],
        "frames": late["frames"],
        "stale_frames": sum(t["stale_frames"] for t in turns),
        "ok": ok,
    }


async def run_chain(target: ServerTarget, script: ChainScript) -> ChainResult:
    """Probe and run every size against one server; sizes stop after the first that fails."""
    result = ChainResult(target)
    ws_url = await resolve_ws_url(target)
    connects, hellos = await probe_hello(ws_url, target.token, script.hello_probes)
    result.connect, result.hello = pct(connects), pct(hellos)
    if script.warmup:
        warm = ChainScript(
            say=script.say[:1],
            turns=1,
            think_s=0.0,
            ramp_s=0.0,
            reply_timeout_s=script.reply_timeout_s,
        )
        await run_swarm(_swarm_config(ws_url, target, warm, 1))
    for n in script.sizes:
        row = await run_size(ws_url, target, script, n)
        result.rows.append(row)
        if row["ok"]:
            result.capacity = n
        else:
            break  # a larger N will not be within target either
    return result
