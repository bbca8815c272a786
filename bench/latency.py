"""Latency of a voice turn (benchmarks.md): one device, real-time audio, a server subprocess.

``server_overhead_ms`` = the device's ``first_audio_ms`` minus the provider time in the server's
ledger line for the same turn: ``endpoint`` (estimated speech end → ASR final: VAD hang-over and
ASR finalisation) plus ``first_sentence_synthesised`` (ASR final → first sentence's audio:
dialogue and TTS). Turns are
paired in order (one device, so the server's turns arrive in the device's order).

``first_audio_ms (MQTT+UDP)``: the same server with MQTT enabled, one board booting from the OTA
URL (which hands it the ``mqtt`` section) and speaking the same utterances over MQTT + UDP;
fewer turns, to keep the run cheap.

The server runs its default engines (``engines`` in the result). ``client`` is the load
generator's CPU over the normal turns, ``server`` the server's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.serverproc import ServerProcess
from bench.turns import UTTERANCES, mark, pct, run_devices, swarm_args
from device.arguments import RunSettings
from device.swarm import SwarmConfig


def mqtt_env(tmp: str) -> dict[str, str]:
    """Environment of a server that also serves MQTT + UDP on free loopback ports."""
    return {
        "XIAOZHI_MQTT__ENABLED": "true",
        "XIAOZHI_MQTT__HOST": "127.0.0.1",
        "XIAOZHI_MQTT__PORT": "0",
        "XIAOZHI_MQTT__UDP_HOST": "127.0.0.1",
        "XIAOZHI_MQTT__UDP_PORT": "0",
        "XIAOZHI_MQTT__SECRET_FILE": str(Path(tmp) / "mqtt-secret"),
    }


def mqtt_swarm(srv: ServerProcess, turns: int) -> SwarmConfig:
    """One board provisioned over OTA, so it talks MQTT + UDP."""
    settings = RunSettings(
        ota_url=f"http://127.0.0.1:{srv.http_port}/xiaozhi/ota/",
        say=UTTERANCES,
        turns=turns,
        think_s=0.5,
    )
    return SwarmConfig(settings, n=1, ramp_s=0.0)


GRAMMAR_FINALISE_MS = 50.0
"""A turn whose ASR finalised faster than this was answered by the grammar fast path."""
TURNS = 8
"""Rounds of the two utterances per run (16 turns; ``make bench`` repeats the run 3 times)."""


def run(quick: bool = False) -> dict[str, Any]:
    turns = 2 if quick else TURNS  # × 2 utterances → 4 / 16 turns per run
    mqtt_turns = 1 if quick else 2  # × 2 utterances → 2 / 4 turns
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(env=mqtt_env(tmp)) as srv:
        engines = srv.engines()
        normal = run_devices(srv, swarm_args(srv.ws_url, 1, turns, 0.5), 60 + 20 * turns)
        mqtt = run_devices(srv, mqtt_swarm(srv, mqtt_turns), 60 + 20 * mqtt_turns)
        aborts = run_devices(
            srv,
            swarm_args(
                srv.ws_url, 1, 1 if quick else 4, 0.5, say=["tell me a story"], abort_after=0.3
            ),
            60 + 20 * turns,
        )
    dev = normal["devices"][0]["turns"]
    done = [t for t in normal["ledger"] if not t["cancelled"]]
    endpoint = [t["endpoint_ms"] for t in dev if t["endpoint_ms"] is not None]
    first = [t["first_audio_ms"] for t in dev if t["first_audio_ms"] is not None]
    overhead = []
    for d, s in zip([t for t in dev if t["first_audio_ms"] is not None], done, strict=False):
        prov = float(s.get("endpoint", 0.0)) + float(s.get("first_sentence_synthesised", 0.0))
        overhead.append(d["first_audio_ms"] - prov)
    # the two paths of the default two-pass recogniser, told apart by the ledger: the grammar
    # fast path finalises in a few ms, Whisper in hundreds
    answered = [t for t in dev if t["first_audio_ms"] is not None]
    by_path: dict[str, list[float]] = {"grammar": [], "whisper": []}
    for d, s in zip(answered, done, strict=False):
        path = "grammar" if float(s.get("asr_finalise", 0.0)) < GRAMMAR_FINALISE_MS else "whisper"
        by_path[path].append(d["first_audio_ms"])
    mqtt_dev = mqtt["devices"][0]["turns"]
    first_mqtt = [t["first_audio_ms"] for t in mqtt_dev if t["first_audio_ms"] is not None]
    abort_turns = aborts["devices"][0]["turns"]
    abort = [t["abort_ms"] for t in abort_turns if t["abort_ms"] is not None]
    stale = sum(t["stale_frames"] for t in abort_turns) + sum(t["stale_frames"] for t in dev)
    figures = {
        "endpoint_ms": pct(endpoint),
        "first_audio_ms": pct(first),
        "first_audio_ms_grammar": pct(by_path["grammar"]),
        "first_audio_ms_whisper": pct(by_path["whisper"]),
        "first_audio_ms_mqtt": pct(first_mqtt),
        "server_overhead_ms": pct(overhead),
        "abort_ms": pct(abort),
        "stale_frames": stale,
    }
    fa, so, ab = figures["first_audio_ms"], figures["server_overhead_ms"], figures["abort_ms"]
    gr = figures["first_audio_ms_grammar"]
    rows = [
        {"metric": "endpoint_ms", **figures["endpoint_ms"], "target": "-", "result": "-"},
        {"metric": "first_audio_ms (all turns)", **fa, "target": "-", "result": "-"},
        {
            "metric": "first_audio_ms (command path)",
            **gr,
            "target": "P50≤350 P95≤450",
            "result": min(mark(gr["p50"], 350), mark(gr["p95"], 450), key=len),
        },
        {
            "metric": "first_audio_ms (free-text path)",
            **figures["first_audio_ms_whisper"],
            "target": "-",
            "result": "-",
        },
        {
            "metric": "first_audio_ms (MQTT+UDP)",
            **figures["first_audio_ms_mqtt"],
            "target": "P50≤500 P95≤800",
            "result": min(
                mark(figures["first_audio_ms_mqtt"]["p50"], 500),
                mark(figures["first_audio_ms_mqtt"]["p95"], 800),
                key=len,
            ),
        },
        {"metric": "server_overhead_ms", **so, "target": "P95≤20", "result": mark(so["p95"], 20)},
        {
            "metric": "abort_ms",
            **ab,
            "target": "P95≤60, 0 stale",
            "result": mark(ab["p95"], 60) if stale == 0 else "MISS",
        },
        {
            "metric": "stale_frames",
            "n": stale,
            "p50": None,
            "p95": None,
            "target": "0",
            "result": "pass" if stale == 0 else "MISS",
        },
    ]
    return {
        "figures": figures,
        "rows": rows,
        "errors": normal["devices"][0]["error"],
        "engines": engines,
        "server": normal["server"],
        "client": normal["client"],
        "ledger": normal["ledger"],
        "device_turns": dev,
        "abort_turns": abort_turns,
        "mqtt_turns": mqtt_dev,
        "mqtt_errors": mqtt["devices"][0]["error"],
    }
