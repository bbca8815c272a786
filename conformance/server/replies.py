"""Item 10: everything the server spoke (greetings and replies), frame by frame: framing, Opus
duration, decodability, pacing."""

from __future__ import annotations

from dataclasses import dataclass, field

from conformance.audio import packet_duration_ms
from conformance.server.records import Event, SessionRecord
from protocol.binary import decode_frame
from protocol.errors import ProtocolError
from protocol.opus import OpusDecoder

QUEUE_PACKETS = 40
"""The board's decode queue: audio more than 40 frames ahead of real time is dropped."""


@dataclass
class Reply:
    t_start: float
    t_stop: float | None = None
    frames: list[Event] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)


def collect_replies(s: SessionRecord) -> list[Reply]:
    """Split the received events of a session into tts start … stop windows."""
    replies: list[Reply] = []
    current: Reply | None = None
    for e in s.received():
        if e.kind == "text":
            obj = e.obj or {}
            if obj.get("type") != "tts":
                continue
            state = obj.get("state")
            if state == "start" and current is None:
                current = Reply(t_start=e.t)
                replies.append(current)
            elif state == "stop" and current is not None:
                current.t_stop = e.t
                current = None
            elif state == "sentence_start" and current is not None:
                current.sentences.append(str(obj.get("text")))
        elif e.kind == "binary" and current is not None:
            current.frames.append(e)
    return replies


def stray_frames(s: SessionRecord) -> list[str]:
    """Binary frames received outside any tts start … stop window, described with timings."""
    out, inside, last_stop = [], False, None
    for e in s.received():
        obj = e.obj if e.kind == "text" else None
        if obj and obj.get("type") == "tts" and obj.get("state") in ("start", "stop"):
            inside = obj["state"] == "start"
            if not inside:
                last_stop = e.t
        elif e.kind == "binary" and not inside:
            if last_stop is None:
                out.append("audio frame before any tts start")
            else:
                out.append(f"audio frame {(e.t - last_stop) * 1000:.0f} ms after tts stop")
    return out


def _hello_audio(s: SessionRecord) -> tuple[int, int]:
    obj = s.server_hello.obj if s.server_hello else None
    ap = (obj or {}).get("audio_params")
    ap = ap if isinstance(ap, dict) else {}
    rate, fd = ap.get("sample_rate", 24000), ap.get("frame_duration", 60)
    return (rate if isinstance(rate, int) else 24000), (fd if isinstance(fd, int) else 60)


def _reply_problems(s: SessionRecord, r: Reply, rate: int, fd: int) -> tuple[list[str], float]:
    problems: list[str] = []
    try:
        decoder: OpusDecoder | None = OpusDecoder(rate, fd)
    except ProtocolError:
        decoder = None
        problems.append(f"cannot decode at hello sample_rate={rate} frame_duration={fd}")
    bad_dur, bad_dec, bad_frame = [], 0, 0
    audio_ms, max_lead_ms = 0.0, 0.0
    t0 = r.frames[0].t if r.frames else 0.0
    for i, e in enumerate(r.frames):
        try:
            payload = decode_frame(e.data or b"", s.version).payload
        except ProtocolError as exc:
            bad_frame += 1
            if bad_frame == 1:
                problems.append(f"frame {i} not framed per v{s.version}: {exc}")
            continue
        dur = packet_duration_ms(payload)
        if dur != fd:
            bad_dur.append(dur)
        if decoder is not None:
            try:
                decoder.decode(payload)
            except ProtocolError:
                bad_dec += 1
        audio_ms += dur or 0.0
        max_lead_ms = max(max_lead_ms, audio_ms - (e.t - t0) * 1000)
    if bad_dur:
        problems.append(
            f"{len(bad_dur)}/{len(r.frames)} packets not exactly {fd} ms (e.g. {bad_dur[0]} ms)"
        )
    if bad_dec:
        problems.append(f"{bad_dec}/{len(r.frames)} packets do not decode at {rate} Hz")
    if max_lead_ms > QUEUE_PACKETS * fd:
        span = (r.frames[-1].t - t0) * 1000
        problems.append(
            f"not paced: audio ran {max_lead_ms:.0f} ms ahead of real time "
            f"(limit {QUEUE_PACKETS * fd} ms; "
            f"{audio_ms:.0f} ms of audio arrived in {span:.0f} ms)"
        )
    return problems, max_lead_ms


def check_replies(sessions: list[SessionRecord]) -> tuple[list[str], str]:
    """Problems of every reply in ``sessions`` (empty = conformant) and a one-line summary."""
    problems: list[str] = []
    n_replies = n_frames = empty = 0
    worst_lead = 0.0
    for s in sessions:
        rate, fd = _hello_audio(s)
        problems += [f"{s.label}: {p}" for p in stray_frames(s)[:3]]
        replies = collect_replies(s)
        for k, r in enumerate(replies):
            n_replies += 1
            n_frames += len(r.frames)
            if not r.frames:
                empty += 1
            if r.t_stop is None and (s.turns or s.greeting is not None):
                problems.append(f"{s.label}: reply {k + 1} never got tts stop")
            found, lead = _reply_problems(s, r, rate, fd)
            worst_lead = max(worst_lead, lead)
            problems += [f"{s.label} reply {k + 1}: {p}" for p in found]
    summary = (
        f"{n_replies} replies, {n_frames} frames, all framed/decodable/exact duration; "
        f"max lead {worst_lead:.0f} ms"
    )
    if empty:
        summary += f"; note: {empty} replies without audio"
    return problems, summary
