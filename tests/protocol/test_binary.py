"""Binary frames v1/v2/v3: exact big-endian layouts and checked payload sizes (protocol.md §3.4)."""

from __future__ import annotations

import pytest

from protocol.binary import FRAME_TYPE_JSON, decode_frame, encode_frame
from protocol.errors import FrameSizeMismatch, FrameTooLarge, UnsupportedBinaryVersion

OPUS = bytes(range(1, 11))


def test_v1_is_the_raw_packet() -> None:
    assert encode_frame(OPUS, 1) == OPUS
    assert decode_frame(OPUS, 1).payload == OPUS


def test_v2_layout() -> None:
    frame = encode_frame(OPUS, 2, timestamp_ms=0x01020304)
    assert frame[:16] == bytes.fromhex("0002 0000 00000000 01020304 0000000a".replace(" ", ""))
    assert frame[16:] == OPUS
    decoded = decode_frame(frame, 2)
    assert (decoded.payload, decoded.timestamp_ms, decoded.frame_type) == (OPUS, 0x01020304, 0)


def test_v3_layout() -> None:
    frame = encode_frame(OPUS, 3)
    assert frame[:4] == bytes([0, 0, 0, 10])
    assert decode_frame(frame, 3).payload == OPUS


def test_v2_json_type_is_reported() -> None:
    frame = encode_frame(b"{}", 2, frame_type=FRAME_TYPE_JSON)
    assert decode_frame(frame, 2).frame_type == FRAME_TYPE_JSON


@pytest.mark.parametrize("version", [2, 3])
def test_payload_size_larger_than_frame_is_rejected(version: int) -> None:
    frame = bytearray(encode_frame(OPUS, version))
    frame = frame[:-1]  # header still says 10
    with pytest.raises(FrameSizeMismatch, match="payload_size=10 but 9"):
        decode_frame(bytes(frame), version)


@pytest.mark.parametrize("version", [2, 3])
def test_trailing_bytes_are_rejected(version: int) -> None:
    with pytest.raises(FrameSizeMismatch):
        decode_frame(encode_frame(OPUS, version) + b"\x00", version)


@pytest.mark.parametrize(("version", "short"), [(2, b"\x00" * 15), (3, b"\x00\x00\x00")])
def test_truncated_header(version: int, short: bytes) -> None:
    with pytest.raises(FrameSizeMismatch, match="shorter than its"):
        decode_frame(short, version)


def test_v1_frame_mistaken_for_v3_is_detected() -> None:
    # A board configured for v1 talking to a server expecting v3: the "header" is Opus bytes.
    with pytest.raises(FrameSizeMismatch):
        decode_frame(bytes([0x58, 0x11, 0x22, 0x33]) + b"\x00" * 40, 3)


@pytest.mark.parametrize("version", [0, 4, 256, -1])
def test_unsupported_version(version: int) -> None:
    with pytest.raises(UnsupportedBinaryVersion):
        decode_frame(OPUS, version)
    with pytest.raises(UnsupportedBinaryVersion):
        encode_frame(OPUS, version)


def test_oversize() -> None:
    with pytest.raises(FrameTooLarge):
        decode_frame(b"\x00" * 2000, 1, max_payload=1500)
    with pytest.raises(FrameTooLarge):
        encode_frame(b"\x00" * 2000, 3, max_payload=1500)
    huge = bytes([0, 0, 0xFF, 0xFF])  # v3 header announcing 65535 bytes
    with pytest.raises(FrameTooLarge):
        decode_frame(huge, 3, max_payload=1500)
