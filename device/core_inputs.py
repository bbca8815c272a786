"""What the board core is fed (:mod:`device.core`): triggers, channel outcomes, typed server
messages, downlink audio, playback and uplink marks; each carries ``now_s`` (monotonic s)."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.enums import AbortReason
from protocol.messages import ServerMessage


@dataclass(frozen=True, kw_only=True)
class Input:
    now_s: float
    """Monotonic time of the input, seconds."""


@dataclass(frozen=True, kw_only=True)
class PoweredOn(Input):
    """Boot: unknown → starting → activating (the shell runs the OTA check)."""


@dataclass(frozen=True, kw_only=True)
class Activated(Input):
    """The OTA check/activation finished: → idle."""


@dataclass(frozen=True, kw_only=True)
class ButtonClicked(Input):
    """The boot button (``ToggleChatState``)."""


@dataclass(frozen=True, kw_only=True)
class TalkPressed(Input):
    """Push-to-talk pressed (``StartListening``)."""


@dataclass(frozen=True, kw_only=True)
class TalkReleased(Input):
    """Push-to-talk released (``StopListening``)."""


@dataclass(frozen=True, kw_only=True)
class WakeWordHeard(Input):
    text: str
    preroll: tuple[bytes, ...] = ()
    """The pre-roll already encoded as Opus packets (sent as a burst before ``listen detect``)."""


@dataclass(frozen=True, kw_only=True)
class AbortRequested(Input):
    reason: AbortReason | None = None


@dataclass(frozen=True, kw_only=True)
class ChannelReady(Input):
    """The socket is up and a valid server hello arrived."""

    session_id: str
    sample_rate_hz: int = 24000
    frame_duration_ms: int = 60


@dataclass(frozen=True, kw_only=True)
class ChannelFailed(Input):
    error: str


@dataclass(frozen=True, kw_only=True)
class ChannelDropped(Input):
    """The server closed the socket (Close frame or TCP loss)."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class MessageReceived(Input):
    message: ServerMessage


@dataclass(frozen=True, kw_only=True)
class AudioReceived(Input):
    payload: bytes
    """One Opus packet (binary header already removed)."""


@dataclass(frozen=True, kw_only=True)
class PlaybackDrained(Input):
    """Everything queued for playback has been played out."""


@dataclass(frozen=True, kw_only=True)
class SpeechSent(Input):
    """The uplink frame holding the last voiced sample of an utterance was sent."""


@dataclass(frozen=True, kw_only=True)
class HungUp(Input):
    """The user ends the conversation: channel dropped, board idle (end of a scripted run)."""


@dataclass(frozen=True, kw_only=True)
class McpAnswered(Input):
    payload: dict[str, object]
