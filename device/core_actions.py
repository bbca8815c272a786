"""What the board core asks its shell to do (:mod:`device.core`), in order: imperatives."""

from __future__ import annotations

from dataclasses import dataclass

from device.events import DeviceEvent
from protocol.messages import IotCommands, WireModel


@dataclass(frozen=True)
class Send:
    message: WireModel


@dataclass(frozen=True)
class SendAudio:
    packets: tuple[bytes, ...]


@dataclass(frozen=True)
class SendIotDescriptors:
    pass


@dataclass(frozen=True)
class SendIotStates:
    delta: bool


@dataclass(frozen=True)
class OpenChannel:
    """Connect + hello; the shell answers with ChannelReady or ChannelFailed."""


@dataclass(frozen=True)
class CloseChannel:
    """Drop TCP without a Close frame (``CloseAudioChannel``)."""


@dataclass(frozen=True)
class OpenMic:
    pass


@dataclass(frozen=True)
class CloseMic:
    pass


@dataclass(frozen=True)
class ConfigureDecoder:
    sample_rate_hz: int
    frame_duration_ms: int


@dataclass(frozen=True)
class ResetDecoder:
    """Empty the play queue and reset the Opus decoder (entering speaking, reboot)."""


@dataclass(frozen=True)
class PlayAudio:
    payload: bytes


@dataclass(frozen=True)
class WatchPlayback:
    """Post :class:`PlaybackDrained` once the play queue is empty."""


@dataclass(frozen=True)
class AnswerMcp:
    """Hand the payload to the MCP server; its reply comes back as :class:`McpAnswered`."""

    payload: dict[str, object]


@dataclass(frozen=True)
class ApplyIotCommands:
    message: IotCommands


@dataclass(frozen=True)
class Emit:
    event: DeviceEvent


Action = (
    Send
    | SendAudio
    | SendIotDescriptors
    | SendIotStates
    | OpenChannel
    | CloseChannel
    | OpenMic
    | CloseMic
    | ConfigureDecoder
    | ResetDecoder
    | PlayAudio
    | WatchPlayback
    | AnswerMcp
    | ApplyIotCommands
    | Emit
)
