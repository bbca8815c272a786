"""Pydantic models of every JSON text message, one discriminated union per direction.

Device → server models declare their fields in the firmware's key order, so
:func:`encode_message` reproduces the firmware's strings byte for byte (``session_id`` first, no
spaces, UTF-8 unescaped). Server → device models put ``type`` first.

Decoding never raises anything but :class:`protocol.errors.MessageError` subclasses.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError

from protocol.audio import AudioParams
from protocol.enums import Emotion, ListenMode
from protocol.errors import InvalidField, MalformedMessage, MessageTooLarge, UnknownMessageType

MAX_TEXT_MESSAGE_BYTES: Final = 64 * 1024
"""Default limit for one JSON text message (the firmware never sends more than 65,535 bytes)."""


class WireModel(BaseModel):
    """Base of all wire messages: unknown keys are ignored, as the firmware does."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# ----------------------------------------------------------------------------- shared parts


class Features(WireModel):
    """``features`` of the device hello (``aec`` first and only on server-AEC builds)."""

    aec: bool | None = None
    mcp: bool | None = None
    glyph_push: bool | None = None


class TextFont(WireModel):
    """``text_font`` of the device hello (v2.4.x, only when ``glyph_push`` is true)."""

    bundle: str
    charset: str
    size: int
    bpp: int


class UdpParams(WireModel):
    """``udp`` of an MQTT server hello: where to send AES-CTR Opus datagrams."""

    server: str
    port: int = Field(ge=1, le=65535)
    key: str
    """AES-128 key, 32 hex characters."""
    nonce: str
    """Header template, 32 hex characters, byte 0 = 0x01."""


class IotProperty(WireModel):
    """A legacy IoT property or method parameter: a description and a JSON type name."""

    description: str = ""
    type: Literal["number", "boolean", "string"]


class IotMethod(WireModel):
    description: str = ""
    parameters: dict[str, IotProperty] = Field(default_factory=dict)


class IotDescriptor(WireModel):
    """One legacy "thing" as the firmware described it (≤ v1.7.x)."""

    name: str
    description: str = ""
    properties: dict[str, IotProperty] = Field(default_factory=dict)
    methods: dict[str, IotMethod] = Field(default_factory=dict)


IotValue = bool | int | float | str


class IotState(WireModel):
    name: str
    state: dict[str, IotValue]


class IotCommand(WireModel):
    name: str
    method: str
    parameters: dict[str, IotValue] = Field(default_factory=dict)


# ----------------------------------------------------------------------------- device → server


class DeviceHello(WireModel):
    """First message on a new socket. ``version`` is the binary protocol version (1/2/3)."""

    type: Literal["hello"] = "hello"
    version: int = Field(default=1, ge=1, le=3)
    features: Features | None = None
    text_font: TextFont | None = None
    transport: str = "websocket"
    audio_params: AudioParams = Field(default_factory=AudioParams)


class ListenStart(WireModel):
    session_id: str = ""
    type: Literal["listen"] = "listen"
    state: Literal["start"] = "start"
    mode: ListenMode = ListenMode.AUTO


class ListenStop(WireModel):
    session_id: str = ""
    type: Literal["listen"] = "listen"
    state: Literal["stop"] = "stop"


class ListenDetect(WireModel):
    """Wake word detected; ``text`` is the wake word, verbatim."""

    session_id: str = ""
    type: Literal["listen"] = "listen"
    state: Literal["detect"] = "detect"
    text: str


class Abort(WireModel):
    """User barge-in; ``reason`` is absent (button) or ``wake_word_detected``."""

    session_id: str = ""
    type: Literal["abort"] = "abort"
    reason: str | None = None


class DeviceMcp(WireModel):
    """An MCP JSON-RPC message from the device (responses to the server's requests)."""

    session_id: str = ""
    type: Literal["mcp"] = "mcp"
    payload: dict[str, Any]


class IotDescriptors(WireModel):
    session_id: str = ""
    type: Literal["iot"] = "iot"
    update: bool = True
    descriptors: list[IotDescriptor]


class IotStates(WireModel):
    session_id: str = ""
    type: Literal["iot"] = "iot"
    update: bool = True
    states: list[IotState]


class DeviceGoodbye(WireModel):
    """MQTT only: the device closes its audio channel."""

    session_id: str = ""
    type: Literal["goodbye"] = "goodbye"


# ----------------------------------------------------------------------------- server → device


class ServerHello(WireModel):
    """Answer to the device hello. ``transport`` is mandatory for the firmware."""

    type: Literal["hello"] = "hello"
    transport: str
    """Required on decode: a board dereferences it unchecked (missing → crash)."""
    session_id: str | None = None
    audio_params: AudioParams | None = None
    udp: UdpParams | None = None


class TtsStart(WireModel):
    type: Literal["tts"] = "tts"
    state: Literal["start"] = "start"
    session_id: str | None = None


class TtsStop(WireModel):
    type: Literal["tts"] = "tts"
    state: Literal["stop"] = "stop"
    session_id: str | None = None


class TtsSentenceStart(WireModel):
    type: Literal["tts"] = "tts"
    state: Literal["sentence_start"] = "sentence_start"
    text: str
    session_id: str | None = None
    glyph_push: dict[str, Any] | None = None


class Stt(WireModel):
    """The user's words as recognised."""

    type: Literal["stt"] = "stt"
    text: str
    session_id: str | None = None
    glyph_push: dict[str, Any] | None = None


class Llm(WireModel):
    """Sets the face; ``emotion`` is one of :class:`Emotion` (unknown names show neutral)."""

    type: Literal["llm"] = "llm"
    emotion: str = Emotion.NEUTRAL
    text: str | None = None
    session_id: str | None = None


class ServerMcp(WireModel):
    type: Literal["mcp"] = "mcp"
    payload: dict[str, Any]
    session_id: str | None = None


class System(WireModel):
    """Only ``command: "reboot"`` does anything on a board."""

    type: Literal["system"] = "system"
    command: str
    session_id: str | None = None


class Alert(WireModel):
    """All three strings are required by the firmware, or the alert is ignored."""

    type: Literal["alert"] = "alert"
    status: str
    message: str
    emotion: str
    session_id: str | None = None


class Custom(WireModel):
    type: Literal["custom"] = "custom"
    payload: dict[str, Any]
    session_id: str | None = None


class ServerGoodbye(WireModel):
    """MQTT only (ignored on WebSocket: close the socket instead)."""

    type: Literal["goodbye"] = "goodbye"
    session_id: str | None = None


class IotCommands(WireModel):
    """Legacy IoT commands to the device (no reply comes back)."""

    type: Literal["iot"] = "iot"
    commands: list[IotCommand]
    session_id: str | None = None


# ----------------------------------------------------------------------------- unions


def _message_tag(value: Any) -> str | None:
    """The union tag of a raw message: ``type``, or ``type.state`` / ``iot.<kind>``."""
    if isinstance(value, BaseModel):
        value = {
            "type": getattr(value, "type", None),
            "state": getattr(value, "state", None),
            **({"descriptors": 1} if hasattr(value, "descriptors") else {}),
            **({"states": 1} if hasattr(value, "states") else {}),
        }
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    if not isinstance(kind, str):
        return None
    if kind in ("listen", "tts"):
        state = value.get("state")
        return f"{kind}.{state}" if isinstance(state, str) else kind
    if kind == "iot":
        if "descriptors" in value:
            return "iot.descriptors"
        if "states" in value:
            return "iot.states"
        if "commands" in value:
            return "iot.commands"
    return kind


DeviceMessage = Annotated[
    Annotated[DeviceHello, Tag("hello")]
    | Annotated[ListenStart, Tag("listen.start")]
    | Annotated[ListenStop, Tag("listen.stop")]
    | Annotated[ListenDetect, Tag("listen.detect")]
    | Annotated[Abort, Tag("abort")]
    | Annotated[DeviceMcp, Tag("mcp")]
    | Annotated[IotDescriptors, Tag("iot.descriptors")]
    | Annotated[IotStates, Tag("iot.states")]
    | Annotated[DeviceGoodbye, Tag("goodbye")],
    Discriminator(_message_tag),
]
"""Every JSON message a device sends."""

ServerMessage = Annotated[
    Annotated[ServerHello, Tag("hello")]
    | Annotated[TtsStart, Tag("tts.start")]
    | Annotated[TtsStop, Tag("tts.stop")]
    | Annotated[TtsSentenceStart, Tag("tts.sentence_start")]
    | Annotated[Stt, Tag("stt")]
    | Annotated[Llm, Tag("llm")]
    | Annotated[ServerMcp, Tag("mcp")]
    | Annotated[System, Tag("system")]
    | Annotated[Alert, Tag("alert")]
    | Annotated[Custom, Tag("custom")]
    | Annotated[ServerGoodbye, Tag("goodbye")]
    | Annotated[IotCommands, Tag("iot.commands")],
    Discriminator(_message_tag),
]
"""Every JSON message a server sends."""

DEVICE_MESSAGE_TYPES: Final = frozenset({"hello", "listen", "abort", "mcp", "iot", "goodbye"})
SERVER_MESSAGE_TYPES: Final = frozenset(
    {"hello", "tts", "stt", "llm", "mcp", "system", "alert", "custom", "goodbye", "iot"}
)
_DEVICE_TAGS: Final = frozenset(
    {
        "hello",
        "listen.start",
        "listen.stop",
        "listen.detect",
        "abort",
        "mcp",
        "iot.descriptors",
        "iot.states",
        "goodbye",
    }
)
_SERVER_TAGS: Final = frozenset(
    {
        "hello",
        "tts.start",
        "tts.stop",
        "tts.sentence_start",
        "stt",
        "llm",
        "mcp",
        "system",
        "alert",
        "custom",
        "goodbye",
        "iot.commands",
    }
)

_device_adapter: TypeAdapter[DeviceMessage] = TypeAdapter(DeviceMessage)
_server_adapter: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)


def parse_json_object(
    data: str | bytes, *, max_bytes: int = MAX_TEXT_MESSAGE_BYTES
) -> dict[str, Any]:
    """Parse one text message into a JSON object, or raise a :class:`MessageError`."""
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > max_bytes:
        raise MessageTooLarge(f"text message of {size} bytes exceeds the {max_bytes}-byte limit")
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise MalformedMessage(f"not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise MalformedMessage(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _decode(
    data: str | bytes,
    *,
    max_bytes: int,
    known_types: frozenset[str],
    known_tags: frozenset[str],
    adapter: TypeAdapter[Any],
) -> Any:
    obj = parse_json_object(data, max_bytes=max_bytes)
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise UnknownMessageType("message has no string 'type' field", kind)
    if kind not in known_types:
        raise UnknownMessageType(f"unknown message type {kind!r}", kind)
    tag = _message_tag(obj)
    if tag not in known_tags:
        raise InvalidField(f"{kind!r} message with unsupported state or shape (tag {tag!r})")
    try:
        return adapter.validate_python(obj)
    except (ValidationError, RecursionError) as exc:
        raise InvalidField(f"invalid {tag!r} message: {exc}") from exc


def decode_device_message(
    data: str | bytes, *, max_bytes: int = MAX_TEXT_MESSAGE_BYTES
) -> DeviceMessage:
    """Decode a text message a device sent (server side)."""
    result: DeviceMessage = _decode(
        data,
        max_bytes=max_bytes,
        known_types=DEVICE_MESSAGE_TYPES,
        known_tags=_DEVICE_TAGS,
        adapter=_device_adapter,
    )
    return result


def decode_server_message(
    data: str | bytes, *, max_bytes: int = MAX_TEXT_MESSAGE_BYTES
) -> ServerMessage:
    """Decode a text message a server sent (device side)."""
    result: ServerMessage = _decode(
        data,
        max_bytes=max_bytes,
        known_types=SERVER_MESSAGE_TYPES,
        known_tags=_SERVER_TAGS,
        adapter=_server_adapter,
    )
    return result


def encode_message(message: WireModel) -> str:
    """Serialise a message compactly, in field order, omitting absent optional fields."""
    return message.model_dump_json(exclude_none=True)
