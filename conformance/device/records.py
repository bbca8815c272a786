"""What the device-checking server recorded: HTTP requests and WebSocket conversations.

Times are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class HttpRecord:
    t: float
    method: str
    path: str
    headers: list[tuple[str, str]]
    """Raw headers in wire order."""
    body: bytes
    status: int = 0
    answer: dict[str, Any] | None = None


@dataclass
class WsEvent:
    t: float
    direction: Literal["in", "out"]
    """``in`` = from the device."""
    kind: Literal["text", "binary", "close"]
    data: str | bytes


@dataclass
class TurnRecord:
    mode: str
    tts_start: float | None = None
    tts_stop: float | None = None
    abort_at: float | None = None
    abort_text: str | None = None
    frames_sent: int = 0


@dataclass
class ConnRecord:
    index: int
    t_open: float
    path: str
    headers: list[tuple[str, str]]
    session_id: str | None
    events: list[WsEvent] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)
    t_closed: float | None = None
    device_close_frame: bool | None = None
    """Whether the device sent a Close frame (None while open or when the server closed)."""
    server_closed: bool = False
    pong_ms: float | None = None
    decode_failures: int = 0
    uplink_samples: set[int] = field(default_factory=set)

    def texts_in(self) -> list[tuple[float, str]]:
        return [
            (e.t, e.data)
            for e in self.events
            if e.direction == "in" and e.kind == "text" and isinstance(e.data, str)
        ]

    def binary_in_times(self) -> list[float]:
        return [e.t for e in self.events if e.direction == "in" and e.kind == "binary"]

    def last_server_message(self, before: float) -> float | None:
        ts = [e.t for e in self.events if e.direction == "out" and e.t < before]
        return max(ts) if ts else None


@dataclass
class McpProbe:
    """Replies the device gave to the MCP probe, by probe name."""

    replies: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    pages: list[dict[str, Any]] = field(default_factory=list)
    page_bytes: list[int] = field(default_factory=list)
    unexpected: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False


def parsed_texts(conn: ConnRecord) -> list[tuple[float, str, dict[str, Any]]]:
    """The device's text messages that are JSON objects: (time, raw text, object)."""
    out = []
    for t, text in conn.texts_in():
        try:
            msg = json.loads(text)
        except ValueError:
            continue
        if isinstance(msg, dict):
            out.append((t, text, msg))
    return out
