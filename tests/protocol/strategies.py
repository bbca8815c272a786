"""Hypothesis strategies producing every wire message with arbitrary (valid) contents."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from protocol.audio import AudioParams
from protocol.enums import ListenMode
from protocol.messages import (
    Abort,
    Alert,
    Custom,
    DeviceGoodbye,
    DeviceHello,
    DeviceMcp,
    Features,
    IotCommand,
    IotCommands,
    IotDescriptor,
    IotDescriptors,
    IotMethod,
    IotProperty,
    IotState,
    IotStates,
    ListenDetect,
    ListenStart,
    ListenStop,
    Llm,
    ServerGoodbye,
    ServerHello,
    ServerMcp,
    Stt,
    System,
    TextFont,
    TtsSentenceStart,
    TtsStart,
    TtsStop,
    UdpParams,
    WireModel,
)

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
opt_text = st.none() | text
json_scalar = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text
json_value: st.SearchStrategy[Any] = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
json_object = st.dictionaries(text, json_value, max_size=4)
iot_value = st.booleans() | st.integers(-1000, 1000) | text
iot_type = st.sampled_from(["number", "boolean", "string"])

audio_params = st.builds(
    AudioParams,
    sample_rate=st.sampled_from([8000, 16000, 24000, 48000]),
    channels=st.sampled_from([1, 2]),
    frame_duration=st.sampled_from([20, 40, 60]),
)
features = st.builds(
    Features,
    aec=st.none() | st.booleans(),
    mcp=st.none() | st.booleans(),
    glyph_push=st.none() | st.booleans(),
)
text_font = st.builds(
    TextFont, bundle=text, charset=text, size=st.integers(1, 64), bpp=st.sampled_from([1, 4])
)
iot_property = st.builds(IotProperty, description=text, type=iot_type)
iot_descriptor = st.builds(
    IotDescriptor,
    name=text,
    description=text,
    properties=st.dictionaries(text, iot_property, max_size=3),
    methods=st.dictionaries(
        text,
        st.builds(
            IotMethod, description=text, parameters=st.dictionaries(text, iot_property, max_size=2)
        ),
        max_size=2,
    ),
)

device_messages: st.SearchStrategy[WireModel] = st.one_of(
    st.builds(
        DeviceHello,
        version=st.sampled_from([1, 2, 3]),
        features=st.none() | features,
        text_font=st.none() | text_font,
        transport=st.sampled_from(["websocket", "udp"]),
        audio_params=audio_params,
    ),
    st.builds(ListenStart, session_id=text, mode=st.sampled_from(list(ListenMode))),
    st.builds(ListenStop, session_id=text),
    st.builds(ListenDetect, session_id=text, text=text),
    st.builds(Abort, session_id=text, reason=opt_text),
    st.builds(DeviceMcp, session_id=text, payload=json_object),
    st.builds(
        IotDescriptors,
        session_id=text,
        update=st.booleans(),
        descriptors=st.lists(iot_descriptor, max_size=2),
    ),
    st.builds(
        IotStates,
        session_id=text,
        update=st.booleans(),
        states=st.lists(
            st.builds(IotState, name=text, state=st.dictionaries(text, iot_value, max_size=3)),
            max_size=3,
        ),
    ),
    st.builds(DeviceGoodbye, session_id=text),
)

hex32 = st.text("0123456789abcdef", min_size=32, max_size=32)
server_messages: st.SearchStrategy[WireModel] = st.one_of(
    st.builds(
        ServerHello,
        transport=st.sampled_from(["websocket", "udp"]),
        session_id=opt_text,
        audio_params=st.none() | audio_params,
        udp=st.none()
        | st.builds(UdpParams, server=text, port=st.integers(1, 65535), key=hex32, nonce=hex32),
    ),
    st.builds(TtsStart, session_id=opt_text),
    st.builds(TtsStop, session_id=opt_text),
    st.builds(TtsSentenceStart, text=text, session_id=opt_text),
    st.builds(Stt, text=text, session_id=opt_text),
    st.builds(Llm, emotion=text, text=opt_text, session_id=opt_text),
    st.builds(ServerMcp, payload=json_object, session_id=opt_text),
    st.builds(System, command=text, session_id=opt_text),
    st.builds(Alert, status=text, message=text, emotion=text, session_id=opt_text),
    st.builds(Custom, payload=json_object, session_id=opt_text),
    st.builds(ServerGoodbye, session_id=opt_text),
    st.builds(
        IotCommands,
        commands=st.lists(
            st.builds(
                IotCommand,
                name=text,
                method=text,
                parameters=st.dictionaries(text, iot_value, max_size=3),
            ),
            max_size=3,
        ),
        session_id=opt_text,
    ),
)
