"""Transcription capacity: N concurrent real-time streams on the sherpa-compatible endpoint.

Each stream sends flite speech (0.2 s of silence, ≈ 1.8 s of words, 0.2 s of silence) as
100 ms float32 messages at real time against one server subprocess, then ``Done`` (the user
stops talking and presses stop). Before the measured rounds, one unmeasured round at the
largest N fills the decoder pools (pocketsphinx creates decoders on demand, ~0.5 s each; the
pool is sized to the largest N here, ``asr.pool_size``). Measured per N:

* partial latency: the server answers every audio message with the segment's text so far;
  latency = answer k received − message k sent (the text then covers that audio);
* final latency: ``Done`` sent → the utterance's final received (0.3 s padding + final
  decode; with a second-pass provider, the second pass too);
* server CPU % over the run.

Engines: pocketsphinx in grammar mode (the default; it has no batch API, so it never batches)
and sherpa-onnx with a tiny streaming NeMo-CTC model built here (the project ships no real
sherpa model; the tiny one costs next to nothing to run, so its rows measure the batching
machinery — the wait ≤ 10 ms, the thread hand-offs — not neural compute), with and without
cross-connection batching. Note what "on" changes besides batching: the streams' steps run on
the transcription pool (a thread per stream, mostly waiting for their batch) and the model on
the one batch thread, where "off" runs everything on the shared executor (``executor_workers``,
2 by default) like the assistant. Capacity = largest N with P95 partial ≤ 500 ms and no
failures. The machine is shared: compare rows of one run, not runs.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.serverproc import ServerProcess
from bench.stats import percentile

PHRASES = ["turn on the kitchen lamp", "what time is it", "set the volume to thirty"]
CHUNK = 1600
LIMIT_P95_MS = 500.0


def _speech() -> np.ndarray:
    from device.audio.sources import say

    pcm = say("turn on the kitchen lamp", "flite")
    gap = np.zeros(3200, np.int16)
    return np.concatenate([gap, pcm, np.zeros(3200, np.int16)])


async def _stream(url: str, audio: np.ndarray) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    sent: list[float] = []
    got: list[float] = []
    out: dict[str, Any] = {"final_ms": None, "text": "", "error": None}
    floats = audio.astype(np.float32) / 32768
    try:
        async with connect(url, max_size=2**20, compression=None) as ws:

            async def receive() -> None:
                async for message in ws:
                    now = time.monotonic()
                    flushed = done_at[0] is not None and len(got) >= len(sent)
                    if message == "Done!":
                        if out["final_ms"] is None and done_at[0] is not None:
                            out["final_ms"] = (now - done_at[0]) * 1000
                        return
                    data = json.loads(message)
                    if data.get("is_final"):
                        out["text"] = data["text"] or out["text"]
                        if flushed and out["final_ms"] is None and done_at[0] is not None:
                            out["final_ms"] = (now - done_at[0]) * 1000
                    elif len(got) < len(sent) or done_at[0] is None:
                        got.append(now)  # the answer to audio message len(got)

            done_at: list[float | None] = [None]
            task = asyncio.create_task(receive())
            start = time.monotonic()
            for k, at in enumerate(range(0, len(floats), CHUNK)):
                await ws.send(floats[at : at + CHUNK].tobytes())
                sent.append(time.monotonic())
                await asyncio.sleep(max(0.0, start + (k + 1) * CHUNK / 16000 - time.monotonic()))
            done_at[0] = time.monotonic()
            await ws.send("Done")
            await asyncio.wait_for(task, 30)
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    n = min(len(sent), len(got))
    out["partial_ms"] = [(got[i] - sent[i]) * 1000 for i in range(n)]
    return out


async def _round(url: str, audio: np.ndarray, n: int) -> list[dict[str, Any]]:
    async def staggered(i: int) -> dict[str, Any]:
        await asyncio.sleep(i * 0.1 / max(n, 1))  # streams do not all start on the same ms
        return await _stream(url, audio)

    return list(await asyncio.gather(*(staggered(i) for i in range(n))))


def _row(
    engine: str, batching: bool | None, n: int, srv: ServerProcess, audio: np.ndarray
) -> dict[str, Any]:
    cpu0, t0 = srv.cpu_s(), time.monotonic()
    results = asyncio.run(_round(f"ws://127.0.0.1:{srv.ws_port}/", audio, n))
    cpu = (srv.cpu_s() - cpu0) / (time.monotonic() - t0) * 100
    partial = [v for r in results for v in r["partial_ms"]]
    final = [r["final_ms"] for r in results if r["final_ms"] is not None]
    errors = sum(1 for r in results if r["error"] or r["final_ms"] is None)
    p95 = percentile(partial, 95)
    return {
        "engine": engine,
        "batching": "-" if batching is None else ("on" if batching else "off"),
        "streams": n,
        "partial_p50_ms": _r(percentile(partial, 50)),
        "partial_p95_ms": _r(p95),
        "final_p50_ms": _r(percentile(final, 50)),
        "final_p95_ms": _r(percentile(final, 95)),
        "errors": errors,
        "cpu_pct": round(cpu),
        "ok": errors == 0 and p95 is not None and p95 <= LIMIT_P95_MS,
        "text": results[0]["text"],
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _tiny_model(dest: Path) -> Path | None:
    try:
        from tests.server.providers.asr.tiny_models import streaming_nemo_ctc
    except ImportError:  # onnx (dev extra) or the tests folder missing
        return None
    streaming_nemo_ctc(dest)
    return dest


def run(quick: bool = False) -> dict[str, Any]:
    audio = _speech()
    sizes = (1, 4) if quick else (1, 4, 8, 16)
    common = {
        "XIAOZHI_TRANSCRIBE__PHRASES": json.dumps(PHRASES),
        "XIAOZHI_TRANSCRIBE__MAX_ACTIVE_STREAMS": "64",
        "XIAOZHI_ASR__POOL_SIZE": str(max(sizes)),
    }
    setups: list[tuple[str, bool | None, dict[str, str]]] = [("pocketsphinx", None, {})]
    with tempfile.TemporaryDirectory(prefix="xiaozhi-bench-tiny-") as tmp:
        model = _tiny_model(Path(tmp))
        if model is not None:
            sherpa = {
                "XIAOZHI_ASR__PROVIDER": "sherpa",
                "XIAOZHI_ASR__SHERPA__KIND": "nemo_ctc",
                "XIAOZHI_ASR__SHERPA__MODEL_DIR": str(model),
                "XIAOZHI_ASR__SHERPA__MODEL": "model.onnx",
            }
            for batched in (True, False):
                env = {**sherpa, "XIAOZHI_TRANSCRIBE__BATCHING": str(batched).lower()}
                setups.append(("sherpa-tiny", batched, env))
        rows = []
        for engine, batching, env in setups:
            with ServerProcess(env={**common, **env}) as srv:
                ns = sizes if engine == "pocketsphinx" or quick else (*sizes, 32)
                asyncio.run(_round(f"ws://127.0.0.1:{srv.ws_port}/", audio, max(ns)))  # warm-up
                for n in ns:
                    rows.append(_row(engine, batching, n, srv, audio))
    capacity = {
        f"{r['engine']}/{r['batching']}": max(
            (
                x["streams"]
                for x in rows
                if x["ok"] and x["engine"] == r["engine"] and x["batching"] == r["batching"]
            ),
            default=0,
        )
        for r in rows
    }
    engines = {
        "asr": "pocketsphinx grammar (the phrases)"
        + (", sherpa-onnx tiny streaming NeMo CTC (built here)" if len(setups) > 1 else "")
    }
    return {
        "rows": rows,
        "engines": engines,
        "capacity_streams": capacity,
        "limit": f"P95 partial ≤ {LIMIT_P95_MS:.0f} ms, no failures",
    }
