"""Device → server messages equal the firmware strings (protocol.md §3.3, §3.5, §8) exactly."""

from __future__ import annotations

import pytest

from protocol.audio import AudioParams
from protocol.enums import AbortReason, ListenMode
from protocol.messages import (
    Abort,
    DeviceGoodbye,
    DeviceHello,
    DeviceMcp,
    Features,
    IotDescriptor,
    IotDescriptors,
    IotMethod,
    IotProperty,
    IotState,
    IotStates,
    ListenDetect,
    ListenStart,
    ListenStop,
    TextFont,
    WireModel,
    decode_device_message,
    encode_message,
)

GOLDEN: list[tuple[WireModel, str]] = [
    (
        DeviceHello(
            version=1,
            features=Features(mcp=True, glyph_push=True),
            text_font=TextFont(bundle="noto-v1", charset="common", size=20, bpp=4),
        ),
        '{"type":"hello","version":1,"features":{"mcp":true,"glyph_push":true},'
        '"text_font":{"bundle":"noto-v1","charset":"common","size":20,"bpp":4},'
        '"transport":"websocket",'
        '"audio_params":{"format":"opus","sample_rate":16000,"channels":1,"frame_duration":60}}',
    ),
    (
        DeviceHello(version=3, features=Features(aec=True, mcp=True)),
        '{"type":"hello","version":3,"features":{"aec":true,"mcp":true},"transport":"websocket",'
        '"audio_params":{"format":"opus","sample_rate":16000,"channels":1,"frame_duration":60}}',
    ),
    (
        DeviceHello(
            version=3,
            transport="udp",
            features=Features(mcp=True, glyph_push=False),
            audio_params=AudioParams(),
        ),
        '{"type":"hello","version":3,"features":{"mcp":true,"glyph_push":false},"transport":"udp",'
        '"audio_params":{"format":"opus","sample_rate":16000,"channels":1,"frame_duration":60}}',
    ),
    (
        ListenStart(session_id="S", mode=ListenMode.AUTO),
        '{"session_id":"S","type":"listen","state":"start","mode":"auto"}',
    ),
    (
        ListenStart(session_id="S", mode=ListenMode.MANUAL),
        '{"session_id":"S","type":"listen","state":"start","mode":"manual"}',
    ),
    (
        ListenStart(session_id="S", mode=ListenMode.REALTIME),
        '{"session_id":"S","type":"listen","state":"start","mode":"realtime"}',
    ),
    (ListenStop(session_id="S"), '{"session_id":"S","type":"listen","state":"stop"}'),
    (
        ListenDetect(session_id="S", text="你好小智"),
        '{"session_id":"S","type":"listen","state":"detect","text":"你好小智"}',
    ),
    (Abort(session_id="S"), '{"session_id":"S","type":"abort"}'),
    (
        Abort(session_id="S", reason=AbortReason.WAKE_WORD_DETECTED),
        '{"session_id":"S","type":"abort","reason":"wake_word_detected"}',
    ),
    (
        DeviceMcp(session_id="S", payload={"jsonrpc": "2.0", "id": 1, "result": {}}),
        '{"session_id":"S","type":"mcp","payload":{"jsonrpc":"2.0","id":1,"result":{}}}',
    ),
    (DeviceGoodbye(session_id="S"), '{"session_id":"S","type":"goodbye"}'),
    (
        IotDescriptors(
            session_id="S",
            descriptors=[
                IotDescriptor(
                    name="AudioSpeaker",
                    description="speaker",
                    properties={"volume": IotProperty(description="volume", type="number")},
                    methods={
                        "set_volume": IotMethod(
                            description="set volume",
                            parameters={"volume": IotProperty(description="0-100", type="number")},
                        )
                    },
                )
            ],
        ),
        '{"session_id":"S","type":"iot","update":true,"descriptors":[{"name":"AudioSpeaker",'
        '"description":"speaker","properties":{"volume":{"description":"volume","type":"number"}},'
        '"methods":{"set_volume":{"description":"set volume","parameters":{"volume":'
        '{"description":"0-100","type":"number"}}}}}]}',
    ),
    (
        IotStates(session_id="S", states=[IotState(name="AudioSpeaker", state={"volume": 80})]),
        '{"session_id":"S","type":"iot","update":true,"states":[{"name":"AudioSpeaker",'
        '"state":{"volume":80}}]}',
    ),
]


@pytest.mark.parametrize(("message", "firmware"), GOLDEN, ids=lambda v: getattr(v, "type", "s"))
def test_device_message_is_the_firmware_string(message: WireModel, firmware: str) -> None:
    assert encode_message(message) == firmware


@pytest.mark.parametrize(("message", "firmware"), GOLDEN, ids=lambda v: getattr(v, "type", "s"))
def test_firmware_string_decodes_to_the_same_message(message: WireModel, firmware: str) -> None:
    decoded = decode_device_message(firmware)
    assert decoded == message
    assert type(decoded) is type(message)


def test_firmware_string_as_utf8_bytes_decodes() -> None:
    raw = '{"session_id":"S","type":"listen","state":"detect","text":"你好小智"}'.encode()
    decoded = decode_device_message(raw)
    assert isinstance(decoded, ListenDetect)
    assert decoded.text == "你好小智"


def test_old_firmware_without_session_id_is_accepted() -> None:
    decoded = decode_device_message('{"type":"listen","state":"start","mode":"auto"}')
    assert decoded == ListenStart(session_id="", mode=ListenMode.AUTO)
