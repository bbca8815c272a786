"""The sequenced packet protocol of ``/ws/asr`` (subprotocol ``asr-protocol-v1``), sans I/O.

Client → server:

* audio: the JSON header ``{"type":"audio","seq":N,"timestamp":ms,"data_length":L}`` followed
  by L bytes of 16 kHz 16-bit little-endian mono PCM (L ≤ 4096, even). Either a text message
  with the header and then one binary message with the L bytes, or one binary message holding
  the header's JSON immediately followed by the L bytes;
* ``{"type":"control","action":"end"}``: the audio is over (finals, then ``ended``);
* ``{"type":"heartbeat"}``: keeps an idle connection open.

Server → client:

* first: ``{"type":"control","action":"session","session":TOKEN,"resumed":bool,"last_seq":S,
  "heartbeat_s":…,"resume_window_s":…}`` (S: the last packet the server has, -1 for none; a
  resuming client resends every packet after S);
* ``{"type":"result","text","seq","is_final","segment","confidence","nbest":[{"text",
  "confidence"}],"entities":[{"type","value","start","end"}]}`` (``seq``: last packet the
  result covers; partials carry no nbest/entities and ``confidence`` null; finals add
  ``start_ms``/``end_ms`` on the stream's audio timeline, ``rejected`` — the recogniser heard
  speech it judged unusable, e.g. out of the grammar: ``text`` is what it made of it — and
  ``language`` when the engine detects it). ``confidence`` and ``nbest`` are what the engine
  gives: Whisper a confidence (exp of the mean token log-probability), pocketsphinx none today
  (its decoder has ``nbest()`` and a posterior, not yet passed on by the provider); without
  alternatives ``nbest`` is the 1-best;
* ``{"type":"control","action":"nack","expected":E,"got":G}`` for a gap (the packet is
  dropped; resend from E); duplicates are dropped silently and counted;
* ``{"type":"heartbeat"}`` every ``heartbeat_s``; ``{"type":"error","code","message"}``;
* ``{"type":"control","action":"ended","last_seq","packets","duplicates","gaps"}``, then close.

Resume: reconnect with ``?session=TOKEN&last_seq=N`` (N: the highest ``seq`` of any result
received) within the window; finals after N are sent again (the client keys them by segment).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from server.transcribe.errors import TranscribeError

SUBPROTOCOL: Final = "asr-protocol-v1"
MAX_PACKET_BYTES: Final = 4096


class SequencedProtocolError(TranscribeError):
    """Bad client input; ``code`` is stable (kebab-case), the message says what to fix."""


@dataclass(frozen=True, slots=True)
class AudioPacket:
    seq: int
    timestamp_ms: float
    pcm: bytes


@dataclass(frozen=True, slots=True)
class EndOfAudio:
    pass


@dataclass(frozen=True, slots=True)
class Heartbeat:
    pass


ClientEvent = AudioPacket | EndOfAudio | Heartbeat


@dataclass(frozen=True, slots=True)
class _Header:
    seq: int
    timestamp_ms: float
    length: int


def _header(obj: Any) -> _Header:
    seq, length, stamp = obj.get("seq"), obj.get("data_length"), obj.get("timestamp", 0)
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise SequencedProtocolError("bad-seq", "audio header needs a non-negative integer seq")
    if (
        not isinstance(length, int)
        or isinstance(length, bool)
        or not 0 < length <= MAX_PACKET_BYTES
    ):
        raise SequencedProtocolError(
            "bad-length", f"data_length must be an integer in 1..{MAX_PACKET_BYTES}"
        )
    if length % 2:
        raise SequencedProtocolError("bad-length", "data_length must be even (16-bit samples)")
    if not isinstance(stamp, int | float) or isinstance(stamp, bool):
        raise SequencedProtocolError("bad-timestamp", "timestamp must be a number (ms)")
    return _Header(seq, float(stamp), length)


def _json_object(text: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SequencedProtocolError("bad-json", f"not JSON: {exc.msg}") from None
    except RecursionError:  # "[[[[…" nested deeper than the interpreter's stack (fuzzer)
        raise SequencedProtocolError("bad-json", "not JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise SequencedProtocolError("bad-json", "messages must be JSON objects")
    return obj


class SequencedDecoder:
    """Feed each WebSocket message to :meth:`feed`; it returns the event it completes (or None
    when a header waits for its payload). Raises :class:`SequencedProtocolError`."""

    def __init__(self) -> None:
        self._waiting: _Header | None = None

    def feed(self, message: str | bytes) -> ClientEvent | None:
        if isinstance(message, bytes):
            return self._binary(message)
        if self._waiting is not None:
            raise SequencedProtocolError(
                "missing-payload", f"expected {self._waiting.length} bytes of audio, got text"
            )
        obj = _json_object(message)
        kind = obj.get("type")
        if kind == "audio":
            self._waiting = _header(obj)
            return None
        if kind == "heartbeat":
            return Heartbeat()
        if kind == "control":
            if obj.get("action") == "end":
                return EndOfAudio()
            raise SequencedProtocolError(
                "bad-control", f"unknown control action {obj.get('action')!r} (known: end)"
            )
        raise SequencedProtocolError(
            "bad-type", f"unknown message type {kind!r} (audio, control, heartbeat)"
        )

    def _binary(self, data: bytes) -> AudioPacket:
        header = self._waiting
        if header is None:
            if not data.startswith(b"{"):
                raise SequencedProtocolError(
                    "missing-header", "binary audio must follow its JSON header"
                )
            try:
                obj, end = json.JSONDecoder().raw_decode(data.decode("latin-1"))
            except json.JSONDecodeError as exc:
                raise SequencedProtocolError("bad-json", f"bad header JSON: {exc.msg}") from None
            if not isinstance(obj, dict) or obj.get("type") != "audio":
                raise SequencedProtocolError("bad-type", "a binary message must be audio")
            header, data = _header(obj), data[end:]
        self._waiting = None
        if len(data) != header.length:
            raise SequencedProtocolError(
                "bad-length", f"data_length says {header.length} bytes, got {len(data)}"
            )
        return AudioPacket(header.seq, header.timestamp_ms, data)


@dataclass(slots=True)
class SeqTracker:
    """Which packets were taken: in order from 0, duplicates dropped, gaps refused."""

    last_seq: int = -1
    packets: int = 0
    duplicates: int = 0
    gaps: int = 0

    def check(self, seq: int) -> str:
        """``"new"`` (take it), ``"duplicate"`` (drop) or ``"gap"`` (drop and nack)."""
        if seq <= self.last_seq:
            self.duplicates += 1
            return "duplicate"
        if seq > self.last_seq + 1:
            self.gaps += 1
            return "gap"
        self.last_seq = seq
        self.packets += 1
        return "new"
