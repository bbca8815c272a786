"""What a server conformance run saw: plain records with monotonic timestamps (seconds).

The runner (:mod:`conformance.server.runner`) fills these; the checkers only read them, so every
check can be unit-tested on a hand-made recording.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

Direction = Literal["in", "out"]
Kind = Literal["text", "binary", "ping", "close"]


@dataclass
class Event:
    """One thing sent or received on a socket at monotonic time ``t`` (s)."""

    t: float
    direction: Direction
    kind: Kind
    text: str | None = None
    data: bytes | None = None
    """Binary payload as received (``in`` only; ``out`` binary keeps only ``size``)."""
    size: int = 0

    @property
    def obj(self) -> dict[str, Any] | None:
        """The text parsed as a JSON object, or None."""
        if self.text is None:
            return None
        try:
            value = json.loads(self.text)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    @property
    def type(self) -> str | None:
        obj = self.obj
        kind = obj.get("type") if obj else None
        return kind if isinstance(kind, str) else None


@dataclass
class Turn:
    """One conversational turn the runner drove (times are monotonic s, None = did not happen)."""

    label: str
    mode: str
    t_listen_start: float
    t_speech_end: float | None = None
    t_listen_stop: float | None = None
    t_abort: float | None = None
    t_tts_start: float | None = None
    t_first_audio: float | None = None
    t_tts_stop: float | None = None
    residual_frames: int = 0
    dtx_frames: int = 0
    note: str = ""

    @property
    def answered(self) -> bool:
        return self.t_tts_start is not None and self.t_tts_stop is not None


@dataclass
class Greeting:
    """What followed a board's ``listen detect`` (monotonic s; None = did not happen)."""

    t_detect: float
    t_tts_start: float | None = None
    t_first_audio: float | None = None
    t_abort: float | None = None
    t_tts_stop: float | None = None
    note: str = ""


@dataclass
class SessionRecord:
    """One WebSocket connection as a board would open it."""

    label: str
    version: int
    purpose: str
    url: str = ""
    request_headers: dict[str, str] = field(default_factory=dict)
    status_code: int | None = None
    reason: str = ""
    response_headers: dict[str, str] = field(default_factory=dict)
    subprotocol: str | None = None
    connect_error: str = ""
    t_hello_sent: float | None = None
    events: list[Event] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    t_closed: float | None = None
    close_code: int | None = None
    closed_by: str = ""
    """"server" when the server ended the socket, "client" when we dropped it."""
    complete: bool = False
    """The runner finished its plan for this session (it was not cut short)."""
    burst_frames: int = 0
    misc_sent: list[str] = field(default_factory=list)
    misc_survived: bool | None = None
    """The socket was still open after the odd messages (None: they were not sent)."""
    greeting: Greeting | None = None

    def received(self, kind: Kind | None = None) -> list[Event]:
        return [e for e in self.events if e.direction == "in" and (kind is None or e.kind == kind)]

    def sent_texts(self) -> list[Event]:
        return [e for e in self.events if e.direction == "out" and e.kind == "text"]

    @property
    def server_hello(self) -> Event | None:
        for e in self.received("text"):
            if e.type == "hello":
                return e
        return None


@dataclass
class HttpExchange:
    method: str
    url: str
    status: int | None = None
    body: str = ""
    error: str = ""
    wall_ms: float = 0.0
    """Wall-clock time of the request, ms since the epoch (to judge ``server_time``)."""

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class IdleRecord:
    """The idle session: hello, then silence until the server closes or ``waited_s`` ends."""

    waited_s: float
    limit_s: float
    closed_after_s: float | None = None
    """Seconds from the last server message to the server closing the socket, None = not closed."""
    close_code: int | None = None
    note: str = ""


@dataclass
class RunRecord:
    """Everything one run saw, plus what it set out to do."""

    ws_url: str
    items: tuple[int, ...]
    ota_url: str | None = None
    ota_post: HttpExchange | None = None
    ota_get: HttpExchange | None = None
    activate: HttpExchange | None = None
    sessions: list[SessionRecord] = field(default_factory=list)
    idle: IdleRecord | None = None
    idle_wait_requested_s: float = 0.0
    abort_stop_limit_s: float = 1.0
    """How soon ``tts stop`` must follow an ``abort`` (s)."""
    errors: list[str] = field(default_factory=list)
    mqtt: Any = None
    """The MQTT + UDP exchange (:class:`conformance.server.mqtt_check.MqttRecord`), if run."""

    def session(self, label: str) -> SessionRecord | None:
        for s in self.sessions:
            if s.label == label:
                return s
        return None
