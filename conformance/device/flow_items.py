"""§10 items 9–16: conversation flows, audio, barge-in, liveness, server messages."""

from __future__ import annotations

import itertools
import json
import statistics
from typing import Any

from conformance.device.harness import DeviceCheckServer
from conformance.device.items import judge
from conformance.device.records import ConnRecord, parsed_texts
from conformance.report import ItemResult


def _listen(m: dict[str, Any], state: str) -> bool:
    return m.get("type") == "listen" and m.get("state") == state


def item9(s: DeviceCheckServer) -> ItemResult:
    p: list[str] = []
    seen: list[str] = []
    for conn in s.conns:
        msgs = parsed_texts(conn)[1:]
        conv = [(t, m) for t, _, m in msgs if m.get("type") == "listen"]
        if not conv:
            continue
        t0, first = conv[0]
        if _listen(first, "detect"):
            burst = [t for t in conn.binary_in_times() if t < t0]
            if not burst:
                p.append(f"socket {conn.index}: listen detect without a wake-word audio burst")
            elif (
                len(burst) > 1
                and statistics.median(b - a for a, b in itertools.pairwise(burst)) > 0.03
            ):
                p.append(f"socket {conn.index}: wake-word pre-roll was paced, not a burst")
            if not isinstance(first.get("text"), str) or not first["text"]:
                p.append("listen detect without the wake word text")
            if len(conv) < 2 or not _listen(conv[1][1], "start"):
                p.append("listen detect not followed by listen start")
            seen.append(f"wake word ({len(burst)} pre-roll frames, detect {first.get('text')!r})")
        elif _listen(first, "start") and first.get("mode") in ("auto", "realtime"):
            seen.append(f"click → listen start {first['mode']}")
        elif _listen(first, "start") and first.get("mode") == "manual":
            stops = [t for t, m in conv if _listen(m, "stop")]
            if not stops:
                p.append(f"socket {conn.index}: manual listen without listen stop")
            elif (
                conn.t_closed is not None
                and conn.t_closed - stops[0] < 1.0
                and not (conn.server_closed)
            ):
                p.append("socket closed right after listen stop (must stay open)")
            seen.append("push-to-talk → listen start manual / listen stop, socket kept")
        else:
            p.append(f"socket {conn.index}: conversation starts with {first}")
    return judge(9, "triggers (click, wake word, push-to-talk)", p, seen, bool(seen))


def item10(s: DeviceCheckServer) -> ItemResult:
    p: list[str] = []
    ev: list[str] = []
    gaps: list[float] = []
    for conn in s.conns:
        if conn.decode_failures:
            p.append(f"socket {conn.index}: {conn.decode_failures} uplink packets did not decode")
        if conn.uplink_samples - {960}:
            p.append(f"uplink frames of {sorted(conn.uplink_samples)} samples (want 960 @16 kHz)")
        times = conn.binary_in_times()
        gaps += [b - a for a, b in itertools.pairwise(times) if 0.02 < b - a < 0.2]
        for turn in conn.turns:
            if turn.tts_start is None or turn.mode == "realtime":
                continue
            end = turn.tts_stop or turn.tts_start + 5
            late = [t for t in times if turn.tts_start + 0.25 < t < end]
            if len(late) > 2:
                p.append(f"{len(late)} uplink frames while speaking in {turn.mode} mode")
    if gaps:
        med = statistics.median(gaps)
        ev.append(f"median uplink interval {med * 1000:.1f} ms over {len(gaps)} gaps")
        if not 0.05 <= med <= 0.07:
            p.append(f"uplink paced at {med * 1000:.1f} ms, want 60 ms")
    ev.append("all uplink packets decode as 16 kHz mono 60 ms Opus; mic stops while speaking")
    return judge(10, "uplink audio", p, ev, bool(gaps))


def _next_listen_start(conn: ConnRecord, after: float) -> float | None:
    for t, _, m in parsed_texts(conn):
        if t > after and _listen(m, "start"):
            return t
    return None


def item11(s: DeviceCheckServer) -> ItemResult:
    """Drop beyond 40 + real-time drain: 50-frame burst → ≈ 2.4 s of playback after tts stop."""
    p: list[str] = []
    ev: list[str] = []
    for conn in s.conns:
        for turn in conn.turns:
            if turn.mode != "auto" or turn.tts_stop is None or turn.abort_at is not None:
                continue
            nxt = _next_listen_start(conn, turn.tts_stop)
            if nxt is None:
                continue
            delay = nxt - turn.tts_stop
            ev.append(f"listen start {delay:.2f} s after tts stop ({turn.frames_sent} frames sent)")
            if not 1.9 <= delay <= 2.9:
                p.append(
                    f"playback drained in {delay:.2f} s after tts stop; with 40 packets "
                    "queued (rest dropped) it should take ≈ 2.4 s"
                )
    return judge(11, "downlink queue (40, drop, reset, drain)", p, ev, bool(ev))


def item12(s: DeviceCheckServer) -> ItemResult:
    p: list[str] = []
    ev: list[str] = []
    for conn in s.conns:
        for turn in conn.turns:
            if turn.tts_stop is None:
                continue
            nxt = _next_listen_start(conn, turn.tts_stop)
            if turn.mode in ("stopped", "manual"):
                end = conn.t_closed or float("inf")
                if nxt is not None and nxt - turn.tts_stop < 1.0 and nxt < end:
                    p.append("listen start right after tts stop in manual mode")
                ev.append("manual: no listen start after tts stop (→ idle)")
            elif turn.mode == "realtime" and nxt is not None:
                p.append("listen start after tts stop in realtime mode")
            elif turn.mode == "auto" and turn.abort_at is None:
                if nxt is None:
                    p.append("no listen start after tts stop in auto mode")
                ev.append("auto: listen start only after playback drained")
    return judge(12, "tts stop → idle/listening", p, sorted(set(ev)), bool(ev))


def item13(s: DeviceCheckServer) -> ItemResult:
    p: list[str] = []
    ev: list[str] = []
    for conn in s.conns:
        for turn in conn.turns:
            if turn.abort_text is None or turn.abort_at is None:
                continue
            sid = conn.session_id
            msg = json.loads(turn.abort_text)
            if msg.get("reason") is None:
                if (
                    sid is not None
                    and turn.abort_text != f'{{"session_id":"{sid}","type":"abort"}}'
                ):
                    p.append(f"abort string {turn.abort_text!r}")
                between = [
                    m
                    for t, _, m in parsed_texts(conn)
                    if turn.abort_at < t < (turn.tts_stop or turn.abort_at)
                    and m.get("type") == "listen"
                ]
                if between:
                    p.append("click abort changed state before tts stop")
                ev.append("click while speaking → bare abort, no local change")
            else:
                if msg.get("reason") != "wake_word_detected":
                    p.append(f"abort reason {msg.get('reason')!r}")
                if _next_listen_start(conn, turn.abort_at) is None and not conn.server_closed:
                    p.append("no listen start after a wake-word barge-in")
                ev.append("wake word while speaking → abort wake_word_detected → listening")
    return judge(13, "abort (click / wake word)", p, sorted(set(ev)), bool(ev))


def item14(s: DeviceCheckServer) -> ItemResult:
    p: list[str] = []
    ev: list[str] = []
    for conn in s.conns:
        mode = ""
        for _, _, m in parsed_texts(conn):
            if _listen(m, "start"):
                mode = m.get("mode", "")
            if _listen(m, "stop") and mode != "manual":
                p.append(f"listen stop in {mode} mode")
        if conn.pong_ms is None and conn.t_closed and conn.t_closed - conn.t_open > 3.5:
            p.append(f"socket {conn.index}: ping not answered")
        if conn.device_close_frame:
            p.append(f"socket {conn.index}: device sent a Close frame (firmware just drops TCP)")
    pongs = [c.pong_ms for c in s.conns if c.pong_ms is not None]
    if pongs:
        ev.append(f"{len(pongs)} pings answered (max {max(pongs):.1f} ms)")
    drops = [c for c in s.conns if c.device_close_frame is False]
    ev.append(f"{len(drops)} device hang-ups without a Close frame")
    closed = [c for c in s.conns if c.server_closed]
    if closed:
        later = [c for c in s.conns if c.t_open > (closed[0].t_closed or 0)]
        ev.append(
            "after the server's Close the next conversation opened a new socket"
            if later
            else "server closed the last socket"
        )
    ev.append("device pings are answered by the server library and not observable here")
    return judge(14, "listen stop/ping/close rules", p, ev, bool(s.conns))


def _conversation_starts(conn: ConnRecord) -> list[float]:
    """Times a new conversation began on an already-open socket (idle → listening)."""
    starts, prev = [], None
    for t, _, m in parsed_texts(conn):
        if m.get("type") != "listen":
            continue
        if (_listen(m, "start") and prev is not None and _listen(prev, "stop")) or (
            _listen(m, "detect") and prev is not None
        ):
            starts.append(t)
        prev = m
    return starts


def item15(s: DeviceCheckServer) -> ItemResult:
    p: list[str] = []
    ev: list[str] = []
    limit = s.cfg.expected_channel_timeout_s
    conns = s.conns
    for conn in conns:  # a conversation started on a stale socket
        for t in _conversation_starts(conn):
            last = conn.last_server_message(t)
            if last is not None and t - last > limit:
                p.append(
                    f"socket {conn.index} reused {t - last:.1f} s after the last server "
                    f"message (> {limit} s)"
                )
            elif last is not None:
                ev.append(
                    f"socket {conn.index} reused {t - last:.1f} s after the last server "
                    f"message (≤ {limit} s)"
                )
    for a, b in itertools.pairwise(conns):
        listens = [m for _, _, m in parsed_texts(a) if m.get("type") == "listen"]
        if a.server_closed or not listens or not _listen(listens[-1], "stop"):
            continue  # a was not left open and idle (push-to-talk release)
        last = a.last_server_message(b.t_open)
        if last is None:
            continue
        gap = b.t_open - last
        if gap > limit:
            ev.append(f"new socket + hello {gap:.1f} s after the last server message (> {limit} s)")
        else:
            p.append(f"new socket after {gap:.1f} s (≤ {limit} s): should reuse socket {a.index}")
    return judge(15, "120 s inactivity rule", p, ev, bool(ev) or bool(p))


def item16(s: DeviceCheckServer) -> ItemResult:
    p: list[str] = []
    if not s.conns or not s.conns[0].turns:
        return judge(16, "server messages handled/ignored", [], ["no reply sent"], False)
    conn = s.conns[0]
    extra_t = next(
        (
            e.t
            for e in conn.events
            if e.direction == "out" and e.data == '{"type":"future_thing","x":1}'
        ),
        None,
    )
    later = [t for t, _, _ in parsed_texts(conn) if extra_t is not None and t > extra_t]
    if extra_t is not None and not later:
        p.append("device went quiet after goodbye/custom/unknown/partial alert")
    ev = [
        "stt, llm, sentence_start, goodbye, custom, unknown type and a partial alert: "
        "connection kept and protocol continued"
    ]
    return judge(16, "server messages handled/ignored", p, ev)
