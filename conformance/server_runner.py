"""Drives a server through the §9 checklist over real sockets and returns a :class:`RunRecord`.

Plan (only the phases the selected items need run):

* OTA: POST like a board, then GET, then ``/activate`` when a challenge is offered.
* ``v1-auto``: auto turn (residual frames after ``tts start``, DTX silence), then a second auto
  turn after ``tts stop`` that is interrupted with ``abort`` once audio flows.
* ``v2-manual``: pre-roll burst + ``listen detect``, odd/unknown messages, realtime listen,
  then a push-to-talk (manual) turn.
* ``v3-drop`` + ``v3-reconnect``: hang up mid-utterance without a Close frame, reconnect, turn.
* ``idle`` (only with an idle wait): say hello and wait for the server to close.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from conformance.audio import encode_pcm, silence_packets, synthesize
from conformance.report import ALL_ITEMS
from conformance.server_link import CLIENT_ID, DEVICE_ID, DeviceLink
from conformance.server_session import HttpExchange, IdleRecord, RunRecord, SessionRecord, Turn

logger = logging.getLogger(__name__)

FRAME_S = 0.060
WAKE_WORD = "你好小智"


@dataclass
class RunConfig:
    """What to run and how long to wait (seconds)."""

    ws_url: str
    ota_url: str | None = None
    token: str | None = None
    items: tuple[int, ...] = ALL_ITEMS
    idle_wait_s: float = 0.0
    idle_limit_s: float = 120.0
    hello_timeout_s: float = 10.0
    answer_timeout_s: float = 20.0
    reply_timeout_s: float = 30.0
    tail_silence_s: float = 1.0
    residual_frames: int = 3
    burst_frames: int = 20
    abort_stop_limit_s: float = 1.0
    settle_s: float = 0.3
    utterances: tuple[str, str] = ("what time is it", "hello")


@dataclass
class _Audio:
    speech: list[list[bytes]] = field(default_factory=list)
    silence: list[bytes] = field(default_factory=list)


def _wants(cfg: RunConfig, *items: int) -> bool:
    return any(i in cfg.items for i in items)


async def run_server_checks(cfg: RunConfig) -> RunRecord:
    """Run every phase the selected items need; never raises for server misbehaviour."""
    run = RunRecord(ws_url=cfg.ws_url, items=tuple(cfg.items), ota_url=cfg.ota_url)
    run.abort_stop_limit_s = cfg.abort_stop_limit_s
    run.idle_wait_requested_s = cfg.idle_wait_s
    token = cfg.token
    if cfg.ota_url and _wants(cfg, 1, 2, 3, 4, 18):
        await _ota_phase(cfg, run)
        ota = run.ota_post.json if run.ota_post else None
        ws = ota.get("websocket") if isinstance(ota, dict) else None
        if token is None and isinstance(ws, dict) and isinstance(ws.get("token"), str):
            token = ws["token"]
    audio = await asyncio.to_thread(_prepare_audio, cfg)
    if _wants(cfg, 5, 6, 7, 9, 10, 11, 12, 13, 15, 16, 17):
        await _session_v1(cfg, run, audio, token)
    if _wants(cfg, 7, 8, 9):
        await _session_v2(cfg, run, audio, token)
    if _wants(cfg, 7, 14):
        await _sessions_v3(cfg, run, audio, token)
    if 15 in cfg.items and cfg.idle_wait_s > 0:
        await _idle_phase(cfg, run, token)
    return run


def _prepare_audio(cfg: RunConfig) -> _Audio:
    frames = int(cfg.answer_timeout_s / FRAME_S) + 20
    return _Audio(
        speech=[encode_pcm(synthesize(text)) for text in cfg.utterances],
        silence=silence_packets(frames),
    )


# ---------------------------------------------------------------------------- OTA


def _system_info() -> dict[str, object]:
    return {
        "version": 2,
        "language": "en-US",
        "flash_size": 16777216,
        "minimum_free_heap_size": "8267468",
        "mac_address": DEVICE_ID,
        "uuid": CLIENT_ID,
        "chip_model_name": "esp32s3",
        "chip_info": {"model": 9, "cores": 2, "revision": 2, "features": 18},
        "application": {
            "name": "xiaozhi",
            "version": "2.4.2",
            "compile_time": "Aug  8 2026T10:00:00Z",
            "idf_version": "v5.4.1",
            "elf_sha256": "0" * 64,
        },
        "partition_table": [
            {"label": "nvs", "type": 1, "subtype": 2, "address": 36864, "size": 16384}
        ],
        "ota": {"label": "ota_0"},
        "display": {"monochrome": False, "width": 240, "height": 240},
        "board": {
            "type": "bread-compact-wifi",
            "name": "bread-compact-wifi",
            "ssid": "lab",
            "rssi": -50,
            "channel": 6,
            "ip": "192.168.1.50",
            "mac": DEVICE_ID,
        },
    }


def _ota_headers() -> dict[str, str]:
    return {
        "Accept-Language": "en-US",
        "Activation-Version": "1",
        "Client-Id": CLIENT_ID,
        "Content-Type": "application/json",
        "Device-Id": DEVICE_ID,
        "User-Agent": "bread-compact-wifi/2.4.2",
        "Connection": "close",
    }


async def _http(
    session: aiohttp.ClientSession, method: str, url: str, body: str | None
) -> HttpExchange:
    ex = HttpExchange(method=method, url=url, wall_ms=time.time() * 1000.0)
    try:
        async with session.request(method, url, data=body, headers=_ota_headers()) as resp:
            ex.status = resp.status
            ex.body = (await resp.read()).decode("utf-8", "replace")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        ex.error = f"{type(exc).__name__}: {exc}"
    return ex


async def _ota_phase(cfg: RunConfig, run: RunRecord) -> None:
    assert cfg.ota_url
    body = json.dumps(_system_info(), separators=(",", ":"))
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as http:
        run.ota_post = await _http(http, "POST", cfg.ota_url, body)
        run.ota_get = await _http(http, "GET", cfg.ota_url, None)
        answer = run.ota_post.json
        activation = answer.get("activation") if isinstance(answer, dict) else None
        if isinstance(activation, dict) and activation.get("challenge"):
            url = cfg.ota_url + ("activate" if cfg.ota_url.endswith("/") else "/activate")
            run.activate = await _http(http, "POST", url, "{}")


# ---------------------------------------------------------------------------- sessions


async def _open(
    cfg: RunConfig, run: RunRecord, label: str, version: int, purpose: str, token: str | None
) -> DeviceLink | None:
    record = SessionRecord(label=label, version=version, purpose=purpose, url=cfg.ws_url)
    run.sessions.append(record)
    link = DeviceLink(record, token=token, hello_timeout_s=cfg.hello_timeout_s)
    if await link.open():
        return link
    await link.drop()
    return None


async def _session_v1(cfg: RunConfig, run: RunRecord, audio: _Audio, token: str | None) -> None:
    link = await _open(cfg, run, "v1-auto", 1, "auto turns, residual frames, abort", token)
    if link is None:
        return
    turn = await run_turn(
        link,
        cfg,
        "v1 auto turn",
        "auto",
        audio.speech[0],
        audio.silence,
        residual=cfg.residual_frames,
    )
    if _wants(cfg, 12, 13) and turn.answered and not link.closed:
        await asyncio.sleep(cfg.settle_s)
        await run_turn(
            link,
            cfg,
            "v1 auto turn after tts stop (interrupted)",
            "auto",
            audio.speech[1],
            audio.silence,
            abort=True,
        )
    link.record.complete = not link.closed
    await link.drop()


async def _session_v2(cfg: RunConfig, run: RunRecord, audio: _Audio, token: str | None) -> None:
    link = await _open(cfg, run, "v2-manual", 2, "pre-roll burst, odd messages, manual turn", token)
    if link is None:
        return
    rec = link.record
    burst = (audio.speech[1] + audio.silence)[: cfg.burst_frames]
    for packet in burst:
        await link.send_audio(packet)
    rec.burst_frames = len(burst)
    misc = [
        link.msg(type="listen", state="detect", text=WAKE_WORD),
        link.msg(
            type="iot",
            update=True,
            descriptors=[
                {
                    "name": "Lamp",
                    "description": "a lamp",
                    "properties": {"power": {"description": "on", "type": "boolean"}},
                    "methods": {},
                }
            ],
        ),
        json.dumps({"type": "weird"}),
        link.msg(type="abort"),
        link.msg(type="abort", reason="wake_word_detected"),
        link.msg(type="mcp", payload={"jsonrpc": "2.0", "id": 424242, "result": {}}),
        link.msg(type="listen", state="start", mode="realtime"),
    ]
    for text in misc:
        if not await link.send_text(text):
            break
        rec.misc_sent.append(text)
        await asyncio.sleep(0.05)
    for packet in audio.silence[:5]:
        await link.send_audio(packet)
        await asyncio.sleep(FRAME_S)
    await asyncio.sleep(cfg.settle_s)
    await link.wait_until(lambda: not _reply_open(rec), cfg.reply_timeout_s)
    if not link.closed:
        await run_turn(link, cfg, "v2 manual turn", "manual", audio.speech[0], audio.silence)
    rec.complete = not link.closed
    await link.drop()


async def _sessions_v3(cfg: RunConfig, run: RunRecord, audio: _Audio, token: str | None) -> None:
    link = await _open(cfg, run, "v3-drop", 3, "hang up mid-utterance without a Close frame", token)
    if link is not None:
        await link.send_text(link.msg(type="listen", state="start", mode="auto"))
        for packet in audio.speech[0][:8]:
            await link.send_audio(packet)
            await asyncio.sleep(FRAME_S)
        link.record.complete = not link.closed
        await link.drop(reset=True)
        await asyncio.sleep(cfg.settle_s)
    link = await _open(cfg, run, "v3-reconnect", 3, "reconnect after the drop, auto turn", token)
    if link is None:
        return
    await run_turn(
        link, cfg, "v3 auto turn after reconnect", "auto", audio.speech[1], audio.silence
    )
    link.record.complete = not link.closed
    await link.drop()


async def _idle_phase(cfg: RunConfig, run: RunRecord, token: str | None) -> None:
    idle = IdleRecord(waited_s=cfg.idle_wait_s, limit_s=cfg.idle_limit_s)
    run.idle = idle
    link = await _open(cfg, run, "idle", 1, "hello, then silence until the server closes", token)
    if link is None:
        idle.note = "could not open the idle session"
        return
    rec = link.record
    await link.wait_until(lambda: link.closed, cfg.idle_wait_s)
    server_msgs = [e.t for e in rec.received() if e.kind in ("text", "binary")]
    if rec.closed_by == "server" and rec.t_closed is not None:
        idle.closed_after_s = rec.t_closed - (server_msgs[-1] if server_msgs else rec.t_closed)
    rec.complete = True
    await link.drop()


# ---------------------------------------------------------------------------- turns


def _reply_open(rec: SessionRecord) -> bool:
    state = None
    for e in rec.received("text"):
        obj = e.obj
        if obj and obj.get("type") == "tts" and obj.get("state") in ("start", "stop"):
            state = obj["state"]
    return state == "start"


async def run_turn(
    link: DeviceLink,
    cfg: RunConfig,
    label: str,
    mode: str,
    speech: Sequence[bytes],
    silence: Sequence[bytes],
    *,
    residual: int = 0,
    abort: bool = False,
) -> Turn:
    """One turn: listen start, paced speech + silence (manual: listen stop), await the reply."""
    rec = link.record
    n0 = len(rec.events)
    turn = Turn(label=label, mode=mode, t_listen_start=time.monotonic())
    rec.turns.append(turn)

    def first(kind: str, state: str | None = None, after: float = 0.0) -> float | None:
        for e in rec.events[n0:]:
            if e.direction != "in" or e.t < after:
                continue
            if kind == "binary" and e.kind == "binary":
                return e.t
            obj = e.obj if e.kind == "text" else None
            if obj and obj.get("type") == kind and (state is None or obj.get("state") == state):
                return e.t
        return None

    def started() -> bool:
        return first("tts", "start") is not None

    await link.send_text(link.msg(type="listen", state="start", mode=mode))
    loop = asyncio.get_running_loop()
    tail = int(cfg.tail_silence_s / FRAME_S)
    stream = list(speech) + list(silence[:tail] if mode == "manual" else silence)
    t0 = loop.time()
    for i, packet in enumerate(stream):
        if started() or link.closed:
            break
        await asyncio.sleep(max(0.0, t0 + i * FRAME_S - loop.time()))
        if not await link.send_audio(packet):
            break
        if i == len(speech) - 1:
            turn.t_speech_end = time.monotonic()
        if i >= len(speech) and len(packet) <= 2:
            turn.dtx_frames += 1
    if mode == "manual" and not link.closed:
        await link.send_text(link.msg(type="listen", state="stop"))
        turn.t_listen_stop = time.monotonic()
    await link.wait_until(started, cfg.answer_timeout_s)
    turn.t_tts_start = first("tts", "start")
    if turn.t_tts_start is None:
        seen = [e.text[:80] for e in rec.events[n0:] if e.direction == "in" and e.text][:3]
        closed = f"; socket closed by {rec.closed_by}" if link.closed else ""
        turn.note = f"no tts start within {cfg.answer_timeout_s:g} s (server said {seen}{closed})"
        return turn
    for packet in silence[:residual]:
        if await link.send_audio(packet):
            turn.residual_frames += 1
    if abort:
        await link.wait_until(
            lambda: (
                first("binary", after=turn.t_tts_start or 0.0) is not None
                or first("tts", "stop") is not None
            ),
            cfg.reply_timeout_s,
        )
        if first("tts", "stop") is None and not link.closed:
            await link.send_text(link.msg(type="abort"))
            turn.t_abort = time.monotonic()
    await link.wait_until(lambda: first("tts", "stop") is not None, cfg.reply_timeout_s)
    turn.t_first_audio = first("binary", after=turn.t_tts_start)
    turn.t_tts_stop = first("tts", "stop", after=turn.t_tts_start)
    await link.wait_until(lambda: link.closed, cfg.settle_s)
    return turn
