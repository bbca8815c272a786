"""Drives a server through the checklist over real sockets and returns a :class:`RunRecord`.

Plan (only the phases the selected items need run):

* ``idle`` (started first, runs alongside the rest): hello, then silence until the server closes
  the socket or ``idle_wait_s`` passes; pings are counted on every session.
* OTA: POST like a board, then GET, then ``/activate`` when a challenge is offered.
* ``v2-wake``: a board's wake-word start (burst, ``listen detect``, ``listen start``); a greeting,
  if the server speaks one, is interrupted with ``abort`` after its first audio frame.
* ``v1-auto``: auto turn (residual frames after ``tts start``, DTX silence), then a second auto
  turn after ``tts stop`` that is interrupted with ``abort`` once audio flows.
* ``v2-manual``: pre-roll burst + ``listen detect``, odd/unknown messages, realtime listen,
  then a push-to-talk (manual) turn.
* ``v3-drop`` + ``v3-reconnect``: hang up mid-utterance without a Close frame, reconnect, turn.

Turns need a working recogniser; every other phase does not, so a server without ASR still gets
a full protocol verdict (see :mod:`conformance.server.items`). Without turn items, the v1 session
still runs one turn when item 10 has no audio to judge yet (a server that does not greet).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from conformance.audio import encode_pcm, silence_packets, synthesize
from conformance.server.items import ALL_ITEMS, TURN_ITEMS
from conformance.server.link import DeviceLink
from conformance.server.ota_phase import run_ota_phase
from conformance.server.records import IdleRecord, RunRecord, SessionRecord
from conformance.server.turn_driver import FRAME_S, TurnTimings, reply_open, run_turn
from conformance.server.wake_phase import WAKE_WORD, run_wake_phase

DEFAULT_IDLE_LIMIT_S = 120.0


@dataclass
class RunConfig:
    """What to run and how long to wait (seconds)."""

    ws_url: str
    ota_url: str | None = None
    token: str | None = None
    items: tuple[int, ...] = ALL_ITEMS
    idle_limit_s: float = DEFAULT_IDLE_LIMIT_S
    """A server must close an idle session within this (protocol.md: 120 s)."""
    idle_wait_s: float = DEFAULT_IDLE_LIMIT_S + 10.0
    """How long the idle session waits for the close (0 = not measured)."""
    hello_timeout_s: float = 10.0
    answer_timeout_s: float = 20.0
    reply_timeout_s: float = 30.0
    greeting_wait_s: float = 4.0
    """How long after ``listen detect`` a greeting may take to start."""
    tail_silence_s: float = 1.0
    residual_frames: int = 3
    burst_frames: int = 20
    abort_stop_limit_s: float = 1.0
    settle_s: float = 0.3
    mcp_settle_s: float = 1.0
    """Without turns: how long the v1 session stays open for the server's MCP discovery."""
    utterances: tuple[str, str] = ("what time is it", "hello")

    @property
    def timings(self) -> TurnTimings:
        return TurnTimings(
            self.answer_timeout_s, self.reply_timeout_s, self.tail_silence_s, self.settle_s
        )


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
    idle = None
    if 15 in cfg.items and cfg.idle_wait_s > 0:
        idle = asyncio.create_task(_idle_phase(cfg, run, token))
    try:
        if cfg.ota_url and _wants(cfg, 1, 2, 3, 4, 18):
            await run_ota_phase(cfg.ota_url, run)
            ota = run.ota_post.json if run.ota_post else None
            ws = ota.get("websocket") if isinstance(ota, dict) else None
            if token is None and isinstance(ws, dict) and isinstance(ws.get("token"), str):
                token = ws["token"]
        audio = await asyncio.to_thread(_prepare_audio, cfg)
        mqtt = _start_mqtt(cfg, run, audio)
        if _wants(cfg, 10, 20):
            link = await _open(cfg, run, "v2-wake", 2, "wake word, abort during a greeting", token)
            if link is not None:
                preroll = (audio.speech[1] + audio.silence)[: cfg.burst_frames]
                await run_wake_phase(link, preroll, cfg.greeting_wait_s, cfg.reply_timeout_s)
        if _wants(cfg, 5, 6, 7, 9, 10, 11, 12, 13, 15, 16, 17, 19):
            await _session_v1(cfg, run, audio, token)
        if _wants(cfg, 7, 8, 9, 10):
            await _session_v2(cfg, run, audio, token)
        if _wants(cfg, 7, 14):
            await _sessions_v3(cfg, run, audio, token)
        if idle is not None:
            await idle
        if mqtt is not None:
            run.mqtt = await mqtt
    finally:
        if idle is not None and not idle.done():
            idle.cancel()
        if mqtt is not None and not mqtt.done():
            mqtt.cancel()
    return run


def _start_mqtt(cfg: RunConfig, run: RunRecord, audio: _Audio) -> asyncio.Task[Any] | None:
    """Item 18 over MQTT + UDP, alongside the WebSocket phases, when the OTA answer has mqtt."""
    from conformance.server.mqtt_check import run_mqtt_phase

    ota = run.ota_post.json if run.ota_post else None
    section = ota.get("mqtt") if isinstance(ota, dict) else None
    if 18 not in cfg.items or not isinstance(section, dict):
        return None
    return asyncio.create_task(
        run_mqtt_phase(
            section,
            audio.speech[0],
            audio.silence,
            hello_timeout_s=cfg.hello_timeout_s,
            reply_timeout_s=cfg.reply_timeout_s,
            idle_wait_s=cfg.idle_wait_s if 15 in cfg.items else 0.0,
        )
    )


def _prepare_audio(cfg: RunConfig) -> _Audio:
    frames = int(cfg.answer_timeout_s / FRAME_S) + 20
    return _Audio(
        speech=[encode_pcm(synthesize(text)) for text in cfg.utterances],
        silence=silence_packets(frames),
    )


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
    speech, silence = audio.speech, audio.silence
    heard = any(s.received("binary") for s in run.sessions)
    if not _wants(cfg, *TURN_ITEMS) and not (10 in cfg.items and not heard):
        await link.wait_until(lambda: link.closed, cfg.mcp_settle_s)  # let MCP discovery run
        link.record.complete = not link.closed
        await link.drop()
        return
    turn = await run_turn(
        link, cfg.timings, "v1 auto turn", "auto", speech[0], silence, residual=cfg.residual_frames
    )
    if _wants(cfg, 12, 13) and turn.answered and not link.closed:
        await asyncio.sleep(cfg.settle_s)
        label = "v1 auto turn after tts stop (interrupted)"
        await run_turn(link, cfg.timings, label, "auto", speech[1], silence, abort=True)
    link.record.complete = not link.closed
    await link.drop()


def _misc_messages(link: DeviceLink) -> list[str]:
    """What a board may send besides turns: detect, legacy iot, unknown, aborts, stray mcp."""
    lamp = {
        "name": "Lamp",
        "description": "a lamp",
        "properties": {"power": {"description": "on", "type": "boolean"}},
        "methods": {},
    }
    return [
        link.msg(type="listen", state="detect", text=WAKE_WORD),
        link.msg(type="iot", update=True, descriptors=[lamp]),
        json.dumps({"type": "weird"}),
        link.msg(type="abort"),
        link.msg(type="abort", reason="wake_word_detected"),
        link.msg(type="mcp", payload={"jsonrpc": "2.0", "id": 424242, "result": {}}),
        link.msg(type="listen", state="start", mode="realtime"),
    ]


async def _session_v2(cfg: RunConfig, run: RunRecord, audio: _Audio, token: str | None) -> None:
    link = await _open(cfg, run, "v2-manual", 2, "pre-roll burst, odd messages, manual turn", token)
    if link is None:
        return
    rec = link.record
    burst = (audio.speech[1] + audio.silence)[: cfg.burst_frames]
    for packet in burst:
        await link.send_audio(packet)
    rec.burst_frames = len(burst)
    for text in _misc_messages(link):
        if not await link.send_text(text):
            break
        rec.misc_sent.append(text)
        await asyncio.sleep(0.05)
    for packet in audio.silence[:5]:
        await link.send_audio(packet)
        await asyncio.sleep(FRAME_S)
    await asyncio.sleep(cfg.settle_s)
    await link.wait_until(lambda: not reply_open(rec), cfg.reply_timeout_s)
    rec.misc_survived = not link.closed
    if not link.closed and _wants(cfg, 7, 9):
        await run_turn(
            link, cfg.timings, "v2 manual turn", "manual", audio.speech[0], audio.silence
        )
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
    if 7 in cfg.items:
        label = "v3 auto turn after reconnect"
        await run_turn(link, cfg.timings, label, "auto", audio.speech[1], audio.silence)
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
        idle.close_code = rec.close_code
    rec.complete = True
    await link.drop()
