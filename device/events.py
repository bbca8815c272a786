"""What a simulated board reports to its user: frozen events, one class per fact (past tense).

The event sink (``--json``, the live view, the demo, tests) receives these objects.
:func:`event_json` is the ``--json`` line: ``{"event": <kind>, "t": <epoch s>, **fields}``, with
the field names scripts already parse (``state.old/new``, ``turn.stt``, ``stt.text`` ...).
A scripted run always ends with exactly one :class:`RunFinished` (``"event": "result"``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class DeviceEvent:
    """Base: ``kind`` is the JSON ``event`` name."""

    kind: ClassVar[str] = "event"

    def describe(self) -> str:
        """One human line for the live view."""
        fields = ", ".join(f"{k} {v}" for k, v in dataclasses.asdict(self).items() if v is not None)
        return f"{self.kind}: {fields}" if fields else self.kind


@dataclass(frozen=True)
class StateChanged(DeviceEvent):
    kind: ClassVar[str] = "state"
    old: str
    new: str

    def describe(self) -> str:
        return f"state {self.old} → {self.new}"


@dataclass(frozen=True)
class ChannelOpened(DeviceEvent):
    kind: ClassVar[str] = "channel"
    session_id: str
    sample_rate: int
    """Downlink sample rate from the server hello, Hz."""
    opened: bool = True

    def describe(self) -> str:
        return f"channel opened: session {self.session_id!r}, downlink {self.sample_rate} Hz"


@dataclass(frozen=True)
class ChannelClosed(DeviceEvent):
    kind: ClassVar[str] = "channel"
    reason: str
    opened: bool = False

    def describe(self) -> str:
        return f"channel closed: {self.reason}"


@dataclass(frozen=True)
class AlertShown(DeviceEvent):
    """A server ``alert``, or the board's own (``server timeout``, cannot connect)."""

    kind: ClassVar[str] = "alert"
    status: str
    message: str
    emotion: str

    def describe(self) -> str:
        return f"alert {self.status}: {self.message}"


@dataclass(frozen=True)
class ChannelOpenFailed(AlertShown):
    """The board's own alert when the channel cannot open (JSON ``event`` stays ``alert``)."""


@dataclass(frozen=True)
class ListenStarted(DeviceEvent):
    """``listen start`` went out and the mic is open (a new turn)."""

    kind: ClassVar[str] = "listen"
    mode: str

    def describe(self) -> str:
        return f"listening ({self.mode})"


@dataclass(frozen=True)
class ReplyAudioStarted(DeviceEvent):
    """The first downlink audio frame of a turn arrived while speaking."""

    kind: ClassVar[str] = "first_audio"
    turn: int

    def describe(self) -> str:
        return f"reply audio started (turn {self.turn})"


@dataclass(frozen=True)
class AbortSent(DeviceEvent):
    kind: ClassVar[str] = "abort"
    reason: str | None = None

    def describe(self) -> str:
        return f"abort sent ({self.reason or 'button'})"


@dataclass(frozen=True)
class UtteranceStarted(DeviceEvent):
    """The simulated user started saying ``text`` (scripted speech)."""

    kind: ClassVar[str] = "utterance"
    text: str

    def describe(self) -> str:
        return f"saying {self.text!r}"


@dataclass(frozen=True)
class SpeechEnded(DeviceEvent):
    """The frame holding the utterance's last voiced sample went out."""

    kind: ClassVar[str] = "speech_end"

    def describe(self) -> str:
        return "end of speech sent"


@dataclass(frozen=True)
class SttReceived(DeviceEvent):
    kind: ClassVar[str] = "stt"
    text: str


@dataclass(frozen=True)
class EmotionChanged(DeviceEvent):
    kind: ClassVar[str] = "llm"
    emotion: str


@dataclass(frozen=True)
class TtsStateChanged(DeviceEvent):
    kind: ClassVar[str] = "tts"
    state: str

    def describe(self) -> str:
        return f"tts {self.state}"


@dataclass(frozen=True)
class SentenceStarted(DeviceEvent):
    kind: ClassVar[str] = "sentence_start"
    text: str


@dataclass(frozen=True)
class TurnEnded(DeviceEvent):
    """A ``tts stop`` ended a reply; latencies in ms from the true end of speech."""

    kind: ClassVar[str] = "turn"
    turn: int
    endpoint_ms: float | None
    first_audio_ms: float | None
    abort_ms: float | None
    stale_frames: int
    stt: str | None

    def describe(self) -> str:
        parts = [f"turn {self.turn}: heard {self.stt!r}" if self.stt else f"turn {self.turn}"]
        if self.first_audio_ms is not None:
            parts.append(f"first audio {self.first_audio_ms:.0f} ms")
        if self.abort_ms is not None:
            parts.append(f"abort {self.abort_ms:.0f} ms")
        return ", ".join(parts)


@dataclass(frozen=True)
class RebootRequested(DeviceEvent):
    kind: ClassVar[str] = "reboot"

    def describe(self) -> str:
        return "server asked for a reboot"


@dataclass(frozen=True)
class ThingChanged(DeviceEvent):
    kind: ClassVar[str] = "thing"
    thing: str
    property: str
    value: bool | int | str

    def describe(self) -> str:
        return f"{self.thing}.{self.property} = {self.value}"


@dataclass(frozen=True)
class RunFinished(DeviceEvent):
    """The last event of a scripted run: ``ok``, or the error's ``code`` and message."""

    kind: ClassVar[str] = "result"
    ok: bool
    code: str | None = None
    error: str | None = None
    replies: tuple[dict[str, Any], ...] = field(default=())
    """One per spoken request: what was said, what the server heard and answered."""

    def describe(self) -> str:
        return "finished" if self.ok else f"failed ({self.code}): {self.error}"


EventSink = Callable[[DeviceEvent], None]


def event_json(event: DeviceEvent, t: float | None = None) -> dict[str, Any]:
    """The ``--json`` object of ``event`` (``t``: wall-clock epoch seconds, default now)."""
    body = dataclasses.asdict(event)
    if isinstance(event, RunFinished):
        body["replies"] = list(event.replies)
    stamp = round(time.time() if t is None else t, 3)
    return {"event": event.kind, "t": stamp, **body}
