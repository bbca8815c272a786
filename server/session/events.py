"""The session core's vocabulary: events in (past-tense facts) and actions out (imperatives).

Every event carries ``now_s``, the shell's monotonic clock reading (seconds), so the core never
reads a clock. Events come from three producers, all through the session's one inbox: the socket
reader (device messages, audio, the channel closing), the speech-in worker (speech progress, the
end of an utterance) and the reply (sentences ready, played out, the reply ended or failed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from protocol.enums import ListenMode
from protocol.messages import WireModel

# ----------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class SessionOpened:
    """The socket is open (handshake done); the hello deadline starts now."""

    now_s: float
    header_version: int | None = None
    """``Protocol-Version`` of the handshake (None: not sent)."""


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A decoded device text message (one of :data:`protocol.messages.DeviceMessage`)."""

    message: object
    now_s: float


@dataclass(frozen=True, slots=True)
class BadMessage:
    """A text message that did not decode; ``code`` is its :mod:`protocol.errors` code."""

    code: str
    detail: str
    now_s: float


@dataclass(frozen=True, slots=True)
class BinaryReceived:
    """One binary WebSocket message (an audio frame, framed per the negotiated version)."""

    data: bytes
    now_s: float


@dataclass(frozen=True, slots=True)
class ChannelLost:
    """The peer went away (close frame or TCP drop)."""

    now_s: float


@dataclass(frozen=True, slots=True)
class TimerFired:
    name: str
    now_s: float


@dataclass(frozen=True, slots=True)
class ShutdownRequested:
    """The server is stopping: finish the reply in progress within ``grace_s``, then close."""

    grace_s: float
    now_s: float


@dataclass(frozen=True, slots=True)
class ToolsChanged:
    """The device's tool list changed (MCP discovery finished, legacy descriptors arrived)."""

    now_s: float


@dataclass(frozen=True, slots=True)
class SpeechProgressed:
    """Utterance ``epoch`` has had ``speech_run_ms`` of uninterrupted speech so far."""

    epoch: int
    speech_run_ms: float
    now_s: float


@dataclass(frozen=True, slots=True)
class PartialStable:
    """Utterance ``epoch``'s partial transcript is a complete command and the user has gone
    quiet: the answer to ``text`` may be started before the endpoint (speculatively)."""

    epoch: int
    text: str
    now_s: float
    language: str | None = None


@dataclass(frozen=True, slots=True)
class RecognitionSlow:
    """Utterance ``epoch`` has ended but its transcript is still being worked out (a busy or
    remote recogniser): the user should hear that they were heard."""

    epoch: int
    now_s: float


@dataclass(frozen=True, slots=True)
class UtteranceEnded:
    """The endpointer or ``listen stop`` ended utterance ``epoch``."""

    epoch: int
    text: str
    heard_speech: bool
    now_s: float
    rejected: bool = False
    """Speech was heard but not understood (the text is what was heard, never acted on)."""
    asr_failed: bool = False
    """The recogniser failed on this utterance (the text is empty or partial)."""
    asr_busy: bool = False
    """It failed because it was too busy to start on the utterance in time."""
    language: str | None = None
    marks: dict[str, float] = field(default_factory=dict)
    """Ledger marks of the utterance (``speech_end``, ``speech_end_detected``, ``asr_final``)."""


@dataclass(frozen=True, slots=True)
class EmotionChosen:
    turn_id: int
    emotion: str
    now_s: float


@dataclass(frozen=True, slots=True)
class SentenceReady:
    """Reply ``turn_id`` has synthesised and encoded sentence ``seq`` (``audio`` is opaque here:
    the player's packets)."""

    turn_id: int
    seq: int
    text: str
    audio: Any
    now_s: float


@dataclass(frozen=True, slots=True)
class SentencePlayed:
    """The board has played sentence ``seq`` of ``turn_id`` to its end (the player's clock)."""

    turn_id: int
    seq: int
    now_s: float


@dataclass(frozen=True, slots=True)
class ReplyEnded:
    """Reply ``turn_id`` has produced all its sentences (``sentences`` of them)."""

    turn_id: int
    sentences: int
    now_s: float


@dataclass(frozen=True, slots=True)
class ReplyFailed:
    """Reply ``turn_id`` raised before producing all its sentences."""

    turn_id: int
    code: str
    now_s: float


Event = (
    SessionOpened
    | MessageReceived
    | BadMessage
    | BinaryReceived
    | ChannelLost
    | TimerFired
    | ShutdownRequested
    | ToolsChanged
    | SpeechProgressed
    | PartialStable
    | RecognitionSlow
    | UtteranceEnded
    | EmotionChosen
    | SentenceReady
    | SentencePlayed
    | ReplyEnded
    | ReplyFailed
)

# ----------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Send:
    message: WireModel


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class SetTimer:
    name: str
    at_s: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    name: str


@dataclass(frozen=True, slots=True)
class OpenUtterance:
    """Start feeding uplink audio of ``epoch`` to speech-in (a fresh VAD/ASR state)."""

    epoch: int
    mode: ListenMode


@dataclass(frozen=True, slots=True)
class FeedAudio:
    epoch: int
    payload: bytes
    arrival_s: float


@dataclass(frozen=True, slots=True)
class FinishUtterance:
    """Finalise speech-in for ``epoch`` now (manual ``listen stop``)."""

    epoch: int


@dataclass(frozen=True, slots=True)
class CloseMicrophone:
    """Drop uplink audio until the next :class:`OpenUtterance`."""


@dataclass(frozen=True, slots=True)
class RefreshGrammar:
    """The device's tools changed: give speech-in the new phrases (an utterance in progress is
    re-recognised with them)."""


@dataclass(frozen=True, slots=True)
class StartToolDiscovery:
    """Start MCP ``initialize`` / ``tools/list`` in the background."""


@dataclass(frozen=True, slots=True)
class FeedTools:
    """Hand an ``mcp`` payload or legacy ``iot`` message to the device's tools."""

    message: object


@dataclass(frozen=True, slots=True)
class StartReply:
    """Answer ``text`` (``fixed``: speak it verbatim instead of asking the dialogue)."""

    turn_id: int
    text: str
    fixed: bool
    language: str
    version: int
    """Binary protocol version to frame the reply's audio with."""
    marks: dict[str, float] = field(default_factory=dict)
    speculative: bool = False
    """Adopt the running speculation (same text and language) as this turn's reply."""


@dataclass(frozen=True, slots=True)
class ContinueReply:
    """Go on speaking in turn ``turn_id`` (after its "one moment"): answer ``text`` (``fixed``:
    verbatim), its sentences numbered from ``first_seq``."""

    turn_id: int
    text: str
    fixed: bool
    language: str
    version: int
    first_seq: int


@dataclass(frozen=True, slots=True)
class Speculate:
    """Start answering ``text`` now, unheard: nothing of it reaches the device and no device
    tool is called until a :class:`StartReply` with ``speculative=True`` adopts it."""

    text: str
    language: str
    version: int


@dataclass(frozen=True, slots=True)
class DiscardSpeculation:
    """The speculative answer was for other words: drop it (it was never heard, no tool ran)."""


@dataclass(frozen=True, slots=True)
class PlaySentence:
    turn_id: int
    seq: int
    text: str
    audio: Any


@dataclass(frozen=True, slots=True)
class CancelReply:
    """Stop reply ``turn_id`` now: cancel its producer, flush its audio."""

    turn_id: int


@dataclass(frozen=True, slots=True)
class ReplyFinished:
    """Reply ``turn_id`` is over (``completed``: it ran to its end; else cancelled/failed)."""

    turn_id: int
    completed: bool


@dataclass(frozen=True, slots=True)
class CountError:
    """Count an error (metrics by code) and log it at info with ``detail``."""

    code: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DropAudio:
    """Count an uplink frame dropped for ``reason``."""

    reason: str


@dataclass(frozen=True, slots=True)
class Log:
    level: int
    message: str


Action = (
    Send
    | Close
    | SetTimer
    | CancelTimer
    | OpenUtterance
    | FeedAudio
    | FinishUtterance
    | CloseMicrophone
    | RefreshGrammar
    | StartToolDiscovery
    | FeedTools
    | StartReply
    | ContinueReply
    | Speculate
    | DiscardSpeculation
    | PlaySentence
    | CancelReply
    | ReplyFinished
    | CountError
    | DropAudio
    | Log
)


Post = Callable[[Event], None]
"""Puts an event into the session's inbox (never blocks; control events are never dropped)."""
