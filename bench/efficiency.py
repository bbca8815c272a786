"""Efficiency: component CPU alone ÷ server process CPU per turn (benchmarks.md).

The two sides are measured in pairs, turn by turn, so that both see the host at the same speed
(this machine's speed drifts by ±20 % within seconds, which made two separate windows disagree
by more than the overhead being measured):

* **server turn**: one board (real sockets, real Opus, real-time audio) says an utterance; the
  server process's CPU is read from /proc/<pid>/stat (utime+stime+cutime+cstime) when the user
  starts speaking (``UtteranceStarted``) and when the reply's ``tts stop`` arrives
  (``TurnEnded``), minus the server's idle rate × that wall time.
* **components alone**, right after, in the board's think pause: the same utterance through the
  server's default engines in a separate process (so the simulator's own CPU is not counted),
  timed by ``getrusage`` (self + children, so an engine run as a subprocess counts): Opus decode of
  the uplink incl. the endpoint silence after the speech, VAD, ASR stream + finish with the demo
  board's grammar, dialogue, TTS of the whole answer, resample + Opus encode of the downlink.

Round 0 (one turn per utterance) warms both sides up and is not counted; the server also warms its
voices and models up at start. The server's spoken-sentence cache is off (:data:`NO_CACHE`).
Efficiency = Σ components ÷ Σ server CPU over the counted turns; the per-turn ratios are
reported too.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.loadgen import ClientCpu, lean_boards
from bench.serverproc import ServerProcess
from bench.turns import UTTERANCES, mark
from device.app import Device
from device.arguments import RunSettings
from device.events import DeviceEvent, SentenceStarted, TurnEnded, UtteranceStarted
from device.scenario import run_script

if TYPE_CHECKING:
    from server.providers.base import DialogueContext

COMPONENTS = ("opus_decode", "vad", "asr", "dialogue", "tts", "opus_encode")

NO_CACHE = {"XIAOZHI_TTS__CACHE_MB": "0"}
"""The server synthesises every answer, as the components alone do (its spoken-sentence cache
would send "The lamp is on." again without synthesis and make the ratio exceed 1)."""

THINK_S = 2.5
"""The board's pause between turns: long enough for one component pass (~0.5-0.9 s CPU) to run
before the next utterance starts."""

TARGET = 0.9


# ---------------------------------------------------------------- components (worker process)
_WORKER: dict[str, Any] = {}


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _init_worker() -> None:
    """Load the server's default engines once (the worker process lives for the whole run)."""
    from iot.things import demo_board
    from server.app import build_providers
    from server.config import load_settings

    settings = load_settings()  # the spoken-sentence cache is the server's, not a provider's
    providers = build_providers(settings)
    board = demo_board()  # the things the bench's board exposes, run here as its tools
    _WORKER.update(
        loop=asyncio.new_event_loop(),
        settings=settings,
        providers=providers,
        board=board,
        phrases=providers.dialogue.phrases(board.mcp_tools()) or None,
        uplink={},
    )


def components_once(text: str) -> tuple[dict[str, float], str]:
    """CPU seconds of each component for one utterance ``text``, and the answer spoken (runs in
    the worker)."""
    loop: asyncio.AbstractEventLoop = _WORKER["loop"]
    return loop.run_until_complete(_components(text))


async def _uplink(text: str) -> list[bytes]:
    """The board's uplink packets for ``text``: speech + the endpoint silence (cached, untimed)."""
    from device.audio.sources import synthesize
    from protocol.audio import split_frames
    from protocol.opus import OpusEncoder

    cache: dict[str, list[bytes]] = _WORKER["uplink"]
    if text not in cache:
        utt = await synthesize(text)
        tail = np.zeros(16 * _WORKER["settings"].vad.endpoint_silence_ms, np.int16)
        enc = OpusEncoder(16000, 60)
        cache[text] = [enc.encode(f) for f in split_frames(np.concatenate([utt.pcm, tail]), 960)]
    return cache[text]


async def _components(text: str) -> tuple[dict[str, float], str]:
    from protocol.audio import resample, split_frames
    from protocol.opus import OpusDecoder, OpusEncoder
    from server.providers.base import TextDelta

    p, phrases = _WORKER["providers"], _WORKER["phrases"]
    packets = await _uplink(text)
    cost: dict[str, float] = {}
    t = _cpu()
    dec = OpusDecoder(16000, 60)
    frames = [dec.decode(pk) for pk in packets]
    t1 = _cpu()
    cost["opus_decode"] = t1 - t
    vad = p.vad.create_stream()
    for f in frames:
        vad.accept(f)
    t2 = _cpu()
    cost["vad"] = t2 - t1
    asr = p.asr.create_stream(phrases)
    for f in frames:
        asr.accept(f)
    heard = asr.finish().text
    asr.close()
    t3 = _cpu()
    cost["asr"] = t3 - t2
    answer = ""
    async for ev in p.dialogue.respond(heard or text, _context()):
        if isinstance(ev, TextDelta):
            answer += ev.text
    t4 = _cpu()
    cost["dialogue"] = t4 - t3
    speech = await p.tts.synthesize(answer or "OK")
    t5 = _cpu()
    cost["tts"] = t5 - t4
    out = resample(speech.pcm, speech.sample_rate_hz, 24000)
    enc24 = OpusEncoder(24000, 60)
    for f in split_frames(out, 1440):
        enc24.encode(f)
    cost["opus_encode"] = _cpu() - t5
    return cost, answer


def _context() -> DialogueContext:
    """A dialogue context with the demo board's tools, called on the board directly (the
    server calls them over MCP), so the components give the answer the server speaks."""
    from iot.tools import ToolOutcome
    from server.providers.base import DialogueContext

    board = _WORKER["board"]

    async def call_tool(name: str, arguments: dict[str, Any]) -> ToolOutcome:
        return ToolOutcome(await board.call_tool(name, arguments))

    return DialogueContext(tools=board.mcp_tools(), call_tool=call_tool)


# ---------------------------------------------------------------- pairing (bench process)
@dataclass
class PairedTurns:
    """Watches one board's events: server CPU per turn, and a component pass after each."""

    srv: ServerProcess
    pool: ProcessPoolExecutor
    idle_rate: float
    """Server CPU seconds per wall second with no board connected."""
    turns: list[dict[str, Any]] = field(default_factory=list)
    passes: list[Future[tuple[dict[str, float], str]]] = field(default_factory=list)
    _open: tuple[str, float, float] | None = None
    _said: list[str] = field(default_factory=list)

    def observe(self, event: DeviceEvent) -> None:
        if isinstance(event, UtteranceStarted):
            self._open = (event.text, self.srv.cpu_s(), time.monotonic())
            self._said = []
        elif isinstance(event, SentenceStarted):
            self._said.append(event.text)
        elif isinstance(event, TurnEnded) and self._open is not None:
            text, cpu0, wall0 = self._open
            self._open = None
            wall = time.monotonic() - wall0
            cpu = self.srv.cpu_s() - cpu0 - self.idle_rate * wall
            self.turns.append(
                {
                    "text": text,
                    "heard": event.stt,
                    "server_answer": " ".join(self._said),
                    "server_cpu_s": cpu,
                    "wall_s": wall,
                }
            )
            self.passes.append(self.pool.submit(components_once, text))


async def _talk(paired: PairedTurns, ws_url: str, rounds: int) -> None:
    settings = RunSettings(ws_url=ws_url, say=UTTERANCES, turns=rounds, think_s=THINK_S)
    utts = await settings.utterances()
    device = await Device.create(settings.device_options(realtime_playback=True), None)
    try:
        await device.boot()
        device.controller.subscribe(paired.observe)
        await run_script(device.controller, settings.script(utts))
    finally:
        device.controller.unsubscribe(paired.observe)
        await device.close()


def run(quick: bool = False) -> dict[str, Any]:
    rounds = 2 if quick else 5  # counted, × 2 utterances, after one warm-up round
    spawn = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(1, mp_context=spawn, initializer=_init_worker) as pool,
        ServerProcess(env=NO_CACHE) as srv,
    ):
        engines = srv.engines()
        pool.submit(components_once, UTTERANCES[0]).result()  # loads the engines, warms them up
        time.sleep(1.0)
        c0, w0 = srv.cpu_s(), time.monotonic()
        time.sleep(3.0)
        idle_rate = (srv.cpu_s() - c0) / (time.monotonic() - w0)
        paired = PairedTurns(srv, pool, idle_rate)
        timeout = 60 + 20 * (rounds + 1) * len(UTTERANCES)
        with ClientCpu() as client, lean_boards():
            asyncio.run(asyncio.wait_for(_talk(paired, srv.ws_url, rounds + 1), timeout))
        costs = [f.result() for f in paired.passes]
    return summarize(paired.turns, costs, warm_up=len(UTTERANCES)) | {
        "engines": engines,
        "idle_cpu_rate": idle_rate,
        "client": client.as_dict(),
    }


def summarize(
    turns: list[dict[str, Any]], passes: list[tuple[dict[str, float], str]], warm_up: int
) -> dict[str, Any]:
    """Efficiency over the paired turns after ``warm_up``, per-turn ratios, the table's rows."""
    for turn, (cost, answer) in zip(turns, passes, strict=True):
        turn["components_s"] = cost
        turn["components_answer"] = answer
        alone = sum(cost.values())
        turn["ratio"] = round(alone / turn["server_cpu_s"], 3) if turn["server_cpu_s"] > 0 else None
    counted = turns[warm_up:]
    n = len(counted)
    comps = {k: sum(t["components_s"][k] for t in counted) / n for k in COMPONENTS} if n else {}
    alone = sum(comps.values())
    per_turn = sum(t["server_cpu_s"] for t in counted) / n if n else None
    ratio = round(alone / per_turn, 3) if per_turn else None
    ratios = [t["ratio"] for t in counted if t["ratio"] is not None]
    rows = [{"part": k, "cpu_ms_per_turn": round(v * 1000, 1)} for k, v in comps.items()]
    rows.append({"part": "components alone", "cpu_ms_per_turn": round(alone * 1000, 1)})
    rows.append(
        {
            "part": "server process",
            "cpu_ms_per_turn": None if per_turn is None else round(per_turn * 1000, 1),
        }
    )
    rows.append(
        {
            "part": f"efficiency (target ≥{TARGET}): {mark(ratio, TARGET, le=False)}",
            "cpu_ms_per_turn": ratio,
        }
    )
    return {
        "efficiency": ratio,
        "turn_ratio_min": min(ratios) if ratios else None,
        "turn_ratio_max": max(ratios) if ratios else None,
        "components_s": comps,
        "server_cpu_per_turn_s": per_turn,
        "turns": n,
        "warm_up_turns": turns[:warm_up],
        "paired_turns": counted,
        "rows": rows,
    }
