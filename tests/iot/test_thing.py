"""Thing declarations → firmware-shaped MCP JSON, legacy descriptors, argument coercion."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot.thing import (
    BoolParam,
    IntParam,
    StrParam,
    ToolError,
    camel_case,
    coerce_arguments,
    snake_case,
    tool_json,
)
from iot.things import demo_board
from protocol.messages import IotDescriptors, encode_message

SET_VOLUME = (
    '{"name":"self.audio_speaker.set_volume","description":"Set the volume of the audio speaker. '
    "If the current volume is unknown, you must call `self.get_device_status` tool first and "
    'then call this tool.","inputSchema":{"type":"object","properties":{"volume":'
    '{"type":"integer","minimum":0,"maximum":100}},"required":["volume"]}}'
)


def tools_by_name(with_user: bool = False) -> dict[str, str]:
    return {t.name: tool_json(t) for t in demo_board().mcp_tools(with_user_tools=with_user)}


def test_set_volume_json_is_byte_exact() -> None:
    assert tools_by_name()["self.audio_speaker.set_volume"] == SET_VOLUME


def test_no_argument_tool_omits_required() -> None:
    assert tools_by_name()["self.kitchen_lamp.turn_on"] == (
        '{"name":"self.kitchen_lamp.turn_on","description":"Turn on the kitchen lamp.",'
        '"inputSchema":{"type":"object","properties":{}}}'
    )


def test_string_and_default_schemas() -> None:
    from iot.thing import input_schema

    schema = input_schema(
        (
            StrParam("theme"),
            IntParam("quality", minimum=1, maximum=100, default=80),
            BoolParam("loud", default=False),
            StrParam("url", default=""),
        )
    )
    assert json.dumps(schema.to_payload(), separators=(",", ":")) == (
        '{"type":"object","properties":{"theme":{"type":"string"},'
        '"quality":{"type":"integer","default":80,"minimum":1,"maximum":100},'
        '"loud":{"type":"boolean","default":false},"url":{"type":"string","default":""}},'
        '"required":["theme"]}'
    )


def test_tool_order_and_user_only_tools() -> None:
    names = list(tools_by_name())
    assert names[:4] == [
        "self.get_device_status",
        "self.audio_speaker.set_volume",
        "self.screen.set_brightness",
        "self.screen.set_theme",
    ]
    assert "self.reboot" not in names and "self.curtain.set_position" in names
    with_user = tools_by_name(with_user=True)
    assert with_user["self.reboot"] == (
        '{"name":"self.reboot","description":"Reboot the device.","inputSchema":'
        '{"type":"object","properties":{}},"annotations":{"audience":["user"]}}'
    )
    assert list(with_user)[-2:] == ["self.get_system_info", "self.reboot"]


def test_legacy_descriptor_matches_section_8_shape() -> None:
    board = demo_board()
    desc = board.legacy_descriptors()[0]
    wire = json.loads(encode_message(IotDescriptors(session_id="S", descriptors=[desc])))
    assert wire["type"] == "iot" and wire["update"] is True
    thing = wire["descriptors"][0]
    assert list(thing) == ["name", "description", "properties", "methods"]
    assert thing["name"] == "AudioSpeaker"
    assert thing["properties"]["volume"]["type"] == "number"
    assert thing["properties"]["muted"]["type"] == "boolean"
    assert thing["methods"]["set_volume"]["parameters"]["volume"] == {
        "description": "Volume (an integer between 0 and 100)",
        "type": "number",
    }
    names = [d.name for d in board.legacy_descriptors()]
    assert names == [
        "AudioSpeaker", "Screen", "LivingRoomLamp", "KitchenLamp", "BedroomLamp",
        "Thermostat", "Curtain",
    ]  # fmt: skip
    states = {s.name: s.state for s in board.legacy_states()}
    assert states["Thermostat"] == {"target_temperature": 20, "mode": "auto"}


@given(st.from_regex(r"[a-z]{2,8}(_[a-z]{2,8}){0,3}", fullmatch=True))
def test_case_round_trip(name: str) -> None:
    assert snake_case(camel_case(name)) == name


VOLUME = (IntParam("volume", minimum=0, maximum=100),)


@given(st.floats(min_value=0, max_value=100.999))
def test_integers_from_any_number_truncated(x: float) -> None:
    assert coerce_arguments(VOLUME, {"volume": x}) == {"volume": int(x)}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "Missing valid argument: volume"),
        ({"volume": "50"}, "Missing valid argument: volume"),
        ({"volume": True}, "Missing valid argument: volume"),
        ({"volume": 101}, "Value exceeds maximum allowed: 100"),
        ({"volume": -1}, "Value is below minimum allowed: 0"),
        ({"volume": -1.5}, "Value is below minimum allowed: 0"),
        ({"volume": 1e300}, "Value exceeds maximum allowed: 100"),
    ],
)
def test_integer_errors(args: dict[str, object], message: str) -> None:
    with pytest.raises(ToolError, match=f"^{message}$"):
        coerce_arguments(VOLUME, args)


def test_bools_only_from_true_false_and_optional_defaults() -> None:
    params = (BoolParam("muted"), StrParam("theme", default="light"), IntParam("n", default=3))
    assert coerce_arguments(params, {"muted": False, "theme": 5, "n": "x"}) == {
        "muted": False,
        "theme": "light",
        "n": 3,
    }
    for bad in (1, "true", None):
        with pytest.raises(ToolError, match=r"^Missing valid argument: muted$"):
            coerce_arguments(params, {"muted": bad})


async def test_board_calls_change_state_and_notify() -> None:
    board = demo_board()
    seen: list[tuple[str, str, object]] = []
    board.on_change = lambda thing, prop, value: seen.append((thing, prop, value))
    assert await board.call_tool("self.thermostat.set_temperature", {"temperature": 22.7}) == "true"
    assert await board.call_tool("self.curtain.open", {}) == "true"
    assert board.status()["thermostat"]["target_temperature"] == 22
    assert seen == [("thermostat", "target_temperature", 22), ("curtain", "position", 100)]
    status = json.loads(await board.call_tool("self.get_device_status", {}))
    assert list(status)[:2] == ["audio_speaker", "screen"]
    assert status["curtain"] == {"position": 100}
    with pytest.raises(ToolError, match=r"^Invalid color: black"):
        await board.call_tool("self.kitchen_lamp.set_color", {"color": "black"})
    with pytest.raises(ToolError, match=r"^Unknown tool: self.nope$"):
        await board.call_tool("self.nope", {})
