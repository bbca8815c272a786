"""Legacy IoT round trip through the wire encoding, and the ToolRouter over both paths."""

from __future__ import annotations

import json
from typing import Any

import pytest

from iot.legacy import LegacyIotClient, apply_commands, descriptors_messages, states_message
from iot.router import ToolRouter
from iot.things import Board, demo_board
from iot.tools import ToolCaller, ToolOutcome
from protocol.messages import (
    IotCommands,
    IotDescriptors,
    IotStates,
    decode_device_message,
    decode_server_message,
    encode_message,
)
from tests.iot.conftest import Wire


def legacy_pair() -> tuple[Board, LegacyIotClient, list[str]]:
    board = demo_board()
    wire: list[str] = []

    async def send(msg: IotCommands) -> None:
        text = encode_message(msg)
        wire.append(text)
        decoded = decode_server_message(text)
        assert isinstance(decoded, IotCommands)
        outcomes = await apply_commands(board, decoded)
        assert not any(o.is_error for o in outcomes), outcomes

    client = LegacyIotClient(send)
    for msg in [*descriptors_messages(board, "S"), states_message(board, "S")]:
        decoded = decode_device_message(encode_message(msg))
        assert isinstance(decoded, IotDescriptors | IotStates)
        client.feed(decoded)
    return board, client, wire


async def test_legacy_tools_match_mcp_names() -> None:
    board, client, _ = legacy_pair()
    legacy = {t.name: t for t in client.tools}
    mcp = {t.name: t for t in board.mcp_tools()}
    assert list(legacy) == [
        "self.get_device_status",
        *(n for n in mcp if n.startswith("self.audio_speaker")),
        *(n for n in mcp if n.startswith("self.screen")),
        *(
            n
            for n in mcp
            if n.split(".")[1] not in ("audio_speaker", "screen") and n.count(".") == 2
        ),
    ]
    vol = legacy["self.audio_speaker.set_volume"].input_schema.to_payload()
    assert vol == {
        "type": "object",
        "properties": {"volume": {"type": "integer", "minimum": 0, "maximum": 100}},
        "required": ["volume"],
    }


async def test_legacy_round_trip_and_status() -> None:
    board, client, wire = legacy_pair()
    out = await client.call_tool("self.living_room_lamp.set_brightness", {"brightness": 40.6})
    assert out == ToolOutcome("true")
    assert wire[-1] == (
        '{"type":"iot","commands":[{"name":"LivingRoomLamp","method":"set_brightness",'
        '"parameters":{"brightness":40}}]}'
    )
    assert board.status()["living_room_lamp"]["brightness"] == 40
    delta = states_message(board, "S", delta=True)
    assert [s.name for s in delta.states] == ["LivingRoomLamp"]
    client.feed(delta)
    status = json.loads((await client.call_tool("self.get_device_status", {})).text)
    assert status["living_room_lamp"]["brightness"] == 40
    assert status["audio_speaker"] == {"volume": 70, "muted": False}


@pytest.mark.parametrize(
    ("name", "args", "text"),
    [
        ("self.audio_speaker.set_volume", {"volume": 101}, "Value exceeds maximum allowed: 100"),
        (
            "self.thermostat.set_temperature",
            {"temperature": 5},
            "Value is below minimum allowed: 10",
        ),
        ("self.audio_speaker.set_mute", {"muted": "yes"}, "Missing valid argument: muted"),
        ("self.screen.set_theme", {}, "Missing valid argument: theme"),
        ("self.toaster.toast", {}, "Unknown tool: self.toaster.toast"),
    ],
)
async def test_legacy_bad_calls_are_not_sent(name: str, args: dict[str, Any], text: str) -> None:
    _, client, wire = legacy_pair()
    assert await client.call_tool(name, args) == ToolOutcome(text, is_error=True)
    assert wire == []


async def test_router_prefers_mcp_and_falls_back_to_legacy(wire: Wire) -> None:
    router = ToolRouter()
    caller: ToolCaller = router.call
    assert router.tools == []
    assert await caller("self.kitchen_lamp.turn_on", {}) == ToolOutcome(
        "Unknown tool: self.kitchen_lamp.turn_on", is_error=True
    )
    legacy_board, legacy, sent = legacy_pair()
    router.legacy = legacy
    assert (await caller("self.kitchen_lamp.turn_on", {})).text == "true"
    assert legacy_board.status()["kitchen_lamp"]["power"] is True and len(sent) == 1
    router.mcp = wire.client
    await wire.client.start()
    assert [t.name for t in router.tools] == [t.name for t in wire.board.mcp_tools()]
    assert (await caller("self.kitchen_lamp.turn_off", {})).text == "true"
    assert len(sent) == 1  # went over MCP
    assert (await caller("self.get_device_status", {})).text == wire.board.device_status_json()
