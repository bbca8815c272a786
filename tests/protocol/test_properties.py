"""Property tests: decoders raise only ProtocolError subclasses; every message round-trips."""

from __future__ import annotations

import contextlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.binary import decode_frame, encode_frame
from protocol.errors import ProtocolError
from protocol.mcp import parse_jsonrpc
from protocol.messages import (
    WireModel,
    decode_device_message,
    decode_server_message,
    encode_message,
)
from tests.protocol.strategies import device_messages, json_value, server_messages

# Text that is *almost* a message: real keys and types mixed with junk, to reach the validators.
near_messages = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(
            [
                "hello",
                "listen",
                "abort",
                "mcp",
                "iot",
                "goodbye",
                "tts",
                "stt",
                "llm",
                "system",
                "alert",
                "custom",
                "x",
            ]
        )
        | json_value,
        "state": st.sampled_from(["start", "stop", "detect", "sentence_start"]) | json_value,
        "mode": st.sampled_from(["auto", "manual", "realtime"]) | json_value,
        "session_id": json_value,
        "text": json_value,
        "version": json_value,
        "transport": json_value,
        "audio_params": json_value,
        "payload": json_value,
        "descriptors": json_value,
        "states": json_value,
        "commands": json_value,
        "emotion": json_value,
        "status": json_value,
        "message": json_value,
    },
).map(json.dumps)


@given(st.binary(max_size=300) | st.text(max_size=300) | near_messages)
def test_device_decoder_raises_only_protocol_errors(data: bytes | str) -> None:
    with contextlib.suppress(ProtocolError):
        decode_device_message(data)


@given(st.binary(max_size=300) | st.text(max_size=300) | near_messages)
def test_server_decoder_raises_only_protocol_errors(data: bytes | str) -> None:
    with contextlib.suppress(ProtocolError):
        decode_server_message(data)


@given(
    json_value
    | st.fixed_dictionaries(
        {"jsonrpc": st.just("2.0")},
        optional={
            "id": json_value | st.floats(allow_nan=True),
            "method": json_value,
            "params": json_value,
            "result": json_value,
            "error": json_value,
        },
    )
)
def test_jsonrpc_parser_raises_only_protocol_errors(payload: object) -> None:
    with contextlib.suppress(ProtocolError):
        parse_jsonrpc(payload)


@given(st.binary(max_size=200), st.integers(-5, 10))
def test_binary_decoder_raises_only_protocol_errors(data: bytes, version: int) -> None:
    with contextlib.suppress(ProtocolError):
        decode_frame(data, version)


@settings(max_examples=300)
@given(device_messages)
def test_device_messages_round_trip(message: WireModel) -> None:
    assert decode_device_message(encode_message(message)) == message


@settings(max_examples=300)
@given(server_messages)
def test_server_messages_round_trip(message: WireModel) -> None:
    assert decode_server_message(encode_message(message)) == message


@given(
    st.binary(max_size=1500),
    st.sampled_from([1, 2, 3]),
    st.integers(0, 2**32 - 1),
)
def test_binary_frames_round_trip(payload: bytes, version: int, timestamp_ms: int) -> None:
    frame = decode_frame(encode_frame(payload, version, timestamp_ms=timestamp_ms), version)
    assert frame.payload == payload
    assert frame.version == version
    assert frame.timestamp_ms == (timestamp_ms if version == 2 else 0)
