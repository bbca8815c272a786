"""The one exception tree of the protocol package.

Every decoder in :mod:`protocol` raises only these, never a bare ``KeyError``/``ValueError``::

    ProtocolError                     code
    ├── MessageError
    │   ├── MalformedMessage          malformed-json     not JSON, or not a JSON object
    │   ├── UnknownMessageType        unknown-type       ``type`` missing, not a string, or unknown
    │   ├── InvalidField              invalid-field      a known message with a wrong/missing field
    │   └── MessageTooLarge           message-too-large  text message over the size limit
    ├── BinaryFrameError
    │   ├── UnsupportedBinaryVersion  unsupported-binary-version
    │   ├── FrameSizeMismatch         frame-size-mismatch header payload_size != bytes present
    │   └── FrameTooLarge             frame-too-large    payload over the size limit
    ├── McpError
    │   └── InvalidJsonRpc            invalid-jsonrpc    breaks the firmware's JSON-RPC rules
    └── CodecError
        ├── CodecUnavailable          codec-unavailable  libopus / opuslib missing
        ├── UnsupportedAudioParams    unsupported-audio-params
        └── CorruptAudio              corrupt-audio      an Opus packet that does not decode

``code`` is a stable kebab-case string, used for logs and metrics (errors by code).
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every error raised by the protocol package."""

    code: str = "protocol-error"


class MessageError(ProtocolError):
    """A JSON text message could not be turned into a typed message."""

    code = "message-error"


class MalformedMessage(MessageError):
    """The text is not valid JSON, or not a JSON object."""

    code = "malformed-json"


class UnknownMessageType(MessageError):
    """The ``type`` field is missing, not a string, or names no known message."""

    code = "unknown-type"

    def __init__(self, message: str, message_type: object = None) -> None:
        super().__init__(message)
        self.message_type = message_type


class InvalidField(MessageError):
    """A message of a known type has a missing or wrongly typed field."""

    code = "invalid-field"


class MessageTooLarge(MessageError):
    """A text message exceeds the configured size limit (bytes)."""

    code = "message-too-large"


class BinaryFrameError(ProtocolError):
    """A binary audio frame could not be decoded."""

    code = "binary-frame-error"


class UnsupportedBinaryVersion(BinaryFrameError):
    """The binary protocol version is not 1, 2 or 3."""

    code = "unsupported-binary-version"


class FrameSizeMismatch(BinaryFrameError):
    """The header's ``payload_size`` disagrees with the bytes present (or the header is cut)."""

    code = "frame-size-mismatch"


class FrameTooLarge(BinaryFrameError):
    """The Opus payload exceeds the configured size limit (bytes)."""

    code = "frame-too-large"


class McpError(ProtocolError):
    """An MCP (JSON-RPC 2.0) payload could not be interpreted."""

    code = "mcp-error"


class InvalidJsonRpc(McpError):
    """The payload breaks the JSON-RPC rules the firmware enforces (numeric ids, ``"2.0"``)."""

    code = "invalid-jsonrpc"


class CodecError(ProtocolError):
    """Audio codec failure."""

    code = "codec-error"


class CodecUnavailable(CodecError):
    """opuslib or the system libopus is missing; the message says what to install."""

    code = "codec-unavailable"


class UnsupportedAudioParams(CodecError):
    """A sample rate, channel count or frame duration Opus cannot use."""

    code = "unsupported-audio-params"


class CorruptAudio(CodecError):
    """An Opus packet failed to decode, or PCM of the wrong length was given to the encoder."""

    code = "corrupt-audio"
