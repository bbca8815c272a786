"""Binary audio frames, protocol versions 1/2/3 (protocol.md §3.4). All fields big-endian.

* v1: the message is one raw Opus packet.
* v2: 16-byte header ``version u16, type u16, reserved u32, timestamp_ms u32, payload_size u32``.
* v3: 4-byte header ``type u8, reserved u8, payload_size u16``.

The firmware trusts ``payload_size`` blindly; :func:`decode_frame` checks it against the bytes
present and raises :class:`FrameSizeMismatch` when they disagree.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from protocol.errors import FrameSizeMismatch, FrameTooLarge, UnsupportedBinaryVersion

SUPPORTED_VERSIONS: Final = (1, 2, 3)
MAX_PAYLOAD_BYTES: Final = 65535 - 16
"""Default payload limit: the firmware never sends or accepts a frame over 65,535 bytes."""

FRAME_TYPE_OPUS: Final = 0
FRAME_TYPE_JSON: Final = 1

_V2 = struct.Struct(">HHIII")
_V3 = struct.Struct(">BBH")
V2_HEADER_BYTES: Final = _V2.size
V3_HEADER_BYTES: Final = _V3.size


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """One decoded binary message: the Opus packet and what its header said."""

    payload: bytes
    version: int = 1
    frame_type: int = FRAME_TYPE_OPUS
    timestamp_ms: int = 0
    """v2 only: the downlink timestamp echoed by server-AEC builds, else 0."""


def check_version(version: int) -> None:
    """Raise :class:`UnsupportedBinaryVersion` unless ``version`` is 1, 2 or 3."""
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedBinaryVersion(
            f"binary protocol version must be 1, 2 or 3, got {version!r}"
        )


def encode_frame(
    payload: bytes,
    version: int = 1,
    *,
    timestamp_ms: int = 0,
    frame_type: int = FRAME_TYPE_OPUS,
    max_payload: int = MAX_PAYLOAD_BYTES,
) -> bytes:
    """Wrap one Opus packet in the header of ``version``."""
    check_version(version)
    if len(payload) > max_payload:
        raise FrameTooLarge(f"payload of {len(payload)} bytes exceeds {max_payload}")
    if version == 1:
        return bytes(payload)
    if version == 2:
        header = _V2.pack(2, frame_type & 0xFFFF, 0, timestamp_ms & 0xFFFFFFFF, len(payload))
        return header + payload
    return _V3.pack(frame_type & 0xFF, 0, len(payload)) + payload


def decode_frame(
    data: bytes, version: int = 1, *, max_payload: int = MAX_PAYLOAD_BYTES
) -> AudioFrame:
    """Unwrap one binary message of ``version``; raises only :class:`BinaryFrameError`s."""
    check_version(version)
    if version == 1:
        if len(data) > max_payload:
            raise FrameTooLarge(f"payload of {len(data)} bytes exceeds {max_payload}")
        return AudioFrame(payload=bytes(data), version=1)
    header = _V2 if version == 2 else _V3
    if len(data) < header.size:
        raise FrameSizeMismatch(
            f"v{version} frame of {len(data)} bytes is shorter than its {header.size}-byte header"
        )
    if version == 2:
        _, frame_type, _, timestamp_ms, size = _V2.unpack_from(data)
    else:
        frame_type, _, size = _V3.unpack_from(data)
        timestamp_ms = 0
    present = len(data) - header.size
    if size > max_payload:
        raise FrameTooLarge(f"payload_size {size} exceeds {max_payload}")
    if size != present:
        raise FrameSizeMismatch(
            f"v{version} header says payload_size={size} but {present} bytes follow"
        )
    return AudioFrame(
        payload=bytes(data[header.size :]),
        version=version,
        frame_type=frame_type,
        timestamp_ms=timestamp_ms,
    )
