"""Server → device messages: the shapes §3.3/§3.6/§9.11 require, and tolerant decoding."""

from __future__ import annotations

import pytest

from protocol.audio import AudioParams
from protocol.enums import Emotion
from protocol.errors import InvalidField, UnknownMessageType
from protocol.messages import (
    Alert,
    IotCommand,
    IotCommands,
    Llm,
    ServerHello,
    Stt,
    System,
    TtsSentenceStart,
    TtsStart,
    TtsStop,
    decode_server_message,
    encode_message,
)


def test_server_hello_carries_transport_session_and_audio_params() -> None:
    hello = ServerHello(
        transport="websocket",
        session_id="abc123",
        audio_params=AudioParams(sample_rate=24000, frame_duration=60),
    )
    assert encode_message(hello) == (
        '{"type":"hello","transport":"websocket","session_id":"abc123",'
        '"audio_params":{"format":"opus","sample_rate":24000,"channels":1,"frame_duration":60}}'
    )


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (TtsStart(), '{"type":"tts","state":"start"}'),
        (TtsStop(), '{"type":"tts","state":"stop"}'),
        (TtsSentenceStart(text="Hi."), '{"type":"tts","state":"sentence_start","text":"Hi."}'),
        (Stt(text="hello"), '{"type":"stt","text":"hello"}'),
        (Llm(emotion=Emotion.HAPPY), '{"type":"llm","emotion":"happy"}'),
        (System(command="reboot"), '{"type":"system","command":"reboot"}'),
        (
            Alert(status="Warning", message="Low battery", emotion="sad"),
            '{"type":"alert","status":"Warning","message":"Low battery","emotion":"sad"}',
        ),
        (
            IotCommands(
                commands=[
                    IotCommand(name="AudioSpeaker", method="set_volume", parameters={"volume": 50})
                ]
            ),
            '{"type":"iot","commands":[{"name":"AudioSpeaker","method":"set_volume",'
            '"parameters":{"volume":50}}]}',
        ),
    ],
)
def test_server_message_strings(message: object, expected: str) -> None:
    assert encode_message(message) == expected  # type: ignore[arg-type]
    assert decode_server_message(expected) == message


def test_hello_without_transport_is_invalid() -> None:
    # A board dereferences `transport` unchecked: a hello without it must never pass as valid.
    with pytest.raises(InvalidField):
        decode_server_message('{"type":"hello","session_id":"x"}')


def test_tts_without_state_is_rejected_as_invalid() -> None:
    with pytest.raises(InvalidField):
        decode_server_message('{"type":"tts"}')


def test_alert_needs_all_three_strings() -> None:
    with pytest.raises(InvalidField):
        decode_server_message('{"type":"alert","status":"x","message":"y"}')


def test_goodbye_and_unknown_types() -> None:
    assert decode_server_message('{"type":"goodbye","session_id":"S"}').type == "goodbye"
    with pytest.raises(UnknownMessageType) as info:
        decode_server_message('{"type":"weather","text":"sunny"}')
    assert info.value.message_type == "weather"


def test_unknown_extra_keys_are_ignored() -> None:
    decoded = decode_server_message('{"type":"stt","text":"hi","glyph_push":{"v":1},"x":2}')
    assert isinstance(decoded, Stt)
    assert decoded.text == "hi"
