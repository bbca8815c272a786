"""Efficiency: component CPU alone ÷ server process CPU per turn (benchmarks.md).

Components run in isolation in this process on the same utterances the device sends (Opus
decode of the uplink incl. the endpoint silence after the speech, VAD, ASR stream + finish with
the demo board's grammar, dialogue, TTS of the whole answer, resample + Opus encode of the
downlink), timed by ``getrusage`` (self + children, so an engine run as a subprocess counts).
Server CPU per turn = (CPU over a batch of turns − idle rate × wall) ÷ turns, from
/proc/<pid>/stat (utime+stime+cutime+cstime).

Both sides run the server's default engines; the components get one uncounted warm-up pass
(the server warms its voices and models up at start), and the server's spoken-sentence cache is
off (:data:`NO_CACHE`).
"""

from __future__ import annotations

import asyncio
import resource
import time
from typing import Any

import numpy as np

from bench.serverproc import ServerProcess
from bench.turns import UTTERANCES, mark, run_devices, swarm_args
from device.audio.sources import synthesize
from iot.things import demo_board
from protocol.audio import resample, split_frames
from protocol.opus import OpusDecoder, OpusEncoder
from server.config import load_settings
from server.providers.base import DialogueContext, TextDelta


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


async def _components(texts: tuple[str, ...], reps: int) -> dict[str, float]:
    """Mean CPU seconds per turn of each component."""
    from server.app import build_providers

    settings = load_settings()
    p = await asyncio.to_thread(build_providers, settings)
    phrases = p.dialogue.phrases(demo_board().mcp_tools()) or None  # what the devices expose
    cost = dict.fromkeys(("opus_decode", "vad", "asr", "dialogue", "tts", "opus_encode"), 0.0)
    n = 0
    for rep in range(reps + 1):  # the first pass warms the engines up and is not counted
        if rep == 1:
            cost, n = dict.fromkeys(cost, 0.0), 0
        for text in texts:
            utt = await synthesize(text)
            tail = np.zeros(16 * settings.vad.endpoint_silence_ms, np.int16)
            pcm = np.concatenate([utt.pcm, tail])
            enc = OpusEncoder(16000, 60)
            packets = [enc.encode(f) for f in split_frames(pcm, 960)]
            t = _cpu()
            dec = OpusDecoder(16000, 60)
            frames = [dec.decode(pk) for pk in packets]
            t1 = _cpu()
            cost["opus_decode"] += t1 - t
            vad = p.vad.create_stream()
            for f in frames:
                vad.accept(f)
            t2 = _cpu()
            cost["vad"] += t2 - t1
            asr = p.asr.create_stream(phrases)
            for f in frames:
                asr.accept(f)
            heard = asr.finish().text
            asr.close()
            t3 = _cpu()
            cost["asr"] += t3 - t2
            answer = ""
            async for ev in p.dialogue.respond(heard or text, DialogueContext()):
                if isinstance(ev, TextDelta):
                    answer += ev.text
            t4 = _cpu()
            cost["dialogue"] += t4 - t3
            speech = await p.tts.synthesize(answer or "OK")
            t5 = _cpu()
            cost["tts"] += t5 - t4
            out = resample(speech.pcm, speech.sample_rate_hz, 24000)
            enc24 = OpusEncoder(24000, 60)
            for f in split_frames(out, 1440):
                enc24.encode(f)
            cost["opus_encode"] += _cpu() - t5
            n += 1
    return {k: v / n for k, v in cost.items()}


NO_CACHE = {"XIAOZHI_TTS__CACHE_MB": "0"}
"""The server synthesises every answer, as the components alone do (its spoken-sentence cache
would send "The lamp is on." again without synthesis and make the ratio exceed 1)."""


def run(quick: bool = False) -> dict[str, Any]:
    turns = 2 if quick else 5  # × 2 utterances
    with ServerProcess(env=NO_CACHE) as srv:
        engines = srv.engines()
        time.sleep(1.0)
        c0, w0 = srv.cpu_s(), time.monotonic()
        time.sleep(3.0)
        idle_rate = (srv.cpu_s() - c0) / (time.monotonic() - w0)
        report = run_devices(srv, swarm_args(srv.ws_url, 1, turns, 0.5), 60 + 20 * turns)
    done = sum(1 for t in report["devices"][0]["turns"] if t["first_audio_ms"] is not None)
    server_cpu = report["server"]["cpu_s"] - idle_rate * report["server"]["wall_s"]
    per_turn = server_cpu / done if done else None
    comps = asyncio.run(_components(UTTERANCES, 1 if quick else 2))
    alone = sum(comps.values())
    ratio = round(alone / per_turn, 3) if per_turn else None
    rows = [{"part": k, "cpu_ms_per_turn": round(v * 1000, 1)} for k, v in comps.items()]
    rows.append({"part": "components alone", "cpu_ms_per_turn": round(alone * 1000, 1)})
    rows.append(
        {
            "part": "server process",
            "cpu_ms_per_turn": round(per_turn * 1000, 1) if per_turn else None,
        }
    )
    rows.append(
        {
            "part": f"efficiency (target ≥0.85): {mark(ratio, 0.85, le=False)}",
            "cpu_ms_per_turn": ratio,
        }
    )
    return {
        "efficiency": ratio,
        "components_s": comps,
        "server_cpu_per_turn_s": per_turn,
        "idle_cpu_rate": idle_rate,
        "turns": done,
        "engines": engines,
        "server": report["server"],
        "client": report["client"],
        "rows": rows,
    }
