"""MCP and legacy IoT through the device's WebSocket: exact envelopes, paging, error shapes."""

from __future__ import annotations

import json
from typing import Any

from device.identity import DeviceIdentity
from device.iot_bridge import LegacyIotAdapter, build_iot
from device.scenario import wait_until
from iot.mcp_server import McpServer
from iot.things import demo_board
from tests.device.conftest import ScriptedServer


async def rpc(server: ScriptedServer, payload: dict[str, Any], expect_reply: bool = True) -> Any:
    before = len(server.last.texts)
    await server.send(json.dumps({"type": "mcp", "payload": payload}))
    if not expect_reply:  # the reply to a later ping request must be the next text
        ping = {"jsonrpc": "2.0", "id": 999, "method": "tools/call", "params": {"name": "x"}}
        await server.send(json.dumps({"type": "mcp", "payload": ping}))
        await server.wait(lambda: len(server.last.texts) > before)
        assert json.loads(server.last.texts[before])["payload"]["id"] == 999
        return None
    await server.wait(lambda: len(server.last.texts) > before)
    text = server.last.texts[before]
    assert text.startswith('{"session_id":"S1","type":"mcp","payload":{')
    return json.loads(text)["payload"]


async def test_mcp_initialize_paging_calls_and_errors(
    server: ScriptedServer, make_device: Any
) -> None:
    events: list[dict[str, Any]] = []
    board = demo_board("bread-compact-wifi", "2.4.2")
    board.on_change = lambda thing, prop, value: events.append({thing: {prop: value}})
    ctl = await make_device(mcp=McpServer(board, page_max_bytes=1500))
    await ctl.click()
    await server.wait(lambda: len(server.last.texts) >= 2)
    init = await rpc(server, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
    assert init == {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {
            "protocolVersion": "2024-11-05",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "bread-compact-wifi", "version": "2.4.2"},
        },
    }
    names: list[str] = []
    cursor = None
    for page in range(30):
        params = {"cursor": cursor} if cursor else {}
        reply = await rpc(
            server, {"jsonrpc": "2.0", "id": 10 + page, "method": "tools/list", "params": params}
        )
        assert reply["id"] == 10 + page
        tools = reply["result"]["tools"]
        names += [t["name"] for t in tools]
        cursor = reply["result"].get("nextCursor")
        if cursor is None:
            break
        assert len(json.dumps(reply["result"])) < 1600
    assert page > 1  # several pages at 1500 bytes
    assert names[:2] == ["self.get_device_status", "self.audio_speaker.set_volume"]
    assert len(names) == len(set(names))
    call = await rpc(
        server,
        {
            "jsonrpc": "2.0",
            "id": 50,
            "method": "tools/call",
            "params": {"name": "self.living_room_lamp.turn_on", "arguments": {}},
        },
    )
    assert call["result"]["isError"] is False
    assert {"living_room_lamp": {"power": True}} in events
    err = await rpc(
        server,
        {"jsonrpc": "2.0", "id": 51, "method": "tools/call", "params": {"name": "self.nope"}},
    )
    assert err == {"jsonrpc": "2.0", "id": 51, "error": {"message": "Unknown tool: self.nope"}}
    await rpc(server, {"jsonrpc": "2.0", "id": "x", "method": "tools/list"}, expect_reply=False)
    await rpc(server, {"jsonrpc": "2.0", "method": "notifications/initialized"}, expect_reply=False)


async def test_legacy_iot_descriptors_states_commands(
    server: ScriptedServer, make_device: Any
) -> None:
    board = demo_board("bread-compact-wifi", "1.7.7")
    ctl = await make_device(legacy_iot=LegacyIotAdapter(board), firmware="1.7.7")
    await ctl.click()
    n_things = len(board.things)
    await server.wait(lambda: len(server.last.texts) >= n_things + 3)
    texts = server.last.texts
    # A legacy-IoT build (≤ 1.7.x) predates MCP and glyph push: its hello announces neither
    # (a server would wait for MCP answers that never come).
    assert json.loads(texts[0])["features"] == {}
    descriptors = [json.loads(t) for t in texts[1 : 1 + n_things]]
    assert all(
        t.startswith('{"session_id":"S1","type":"iot","update":true,"descriptors":[')
        for t in texts[1 : 1 + n_things]
    )
    assert {d["descriptors"][0]["name"] for d in descriptors} >= {"AudioSpeaker", "Curtain"}
    states = json.loads(texts[1 + n_things])
    assert states["type"] == "iot" and len(states["states"]) == n_things
    assert (
        texts[2 + n_things] == '{"session_id":"S1","type":"listen","state":"start","mode":"auto"}'
    )
    await server.send(
        json.dumps(
            {
                "type": "iot",
                "commands": [{"name": "KitchenLamp", "method": "turn_on", "parameters": {}}],
            }
        )
    )
    await wait_until(lambda: board.things["kitchen_lamp"].get("power") is True, 2, "the lamp")
    # the delta goes out with the next listen start
    await server.send('{"type":"tts","state":"start"}')
    await server.send('{"type":"tts","state":"stop"}')
    await server.wait(lambda: len(server.last.texts) >= n_things + 5)
    assert server.last.texts[-1].endswith('"type":"listen","state":"start","mode":"auto"}')
    delta = json.loads(server.last.texts[-2])
    assert delta["states"] == [{"name": "KitchenLamp", "state": delta["states"][0]["state"]}]
    assert delta["states"][0]["state"]["power"] is True


def test_bridge_builds_the_demo_board() -> None:
    ident = DeviceIdentity(board_name="b", firmware_version="2.4.2")
    mcp, legacy = build_iot(ident, legacy=False, on_event=None)
    assert isinstance(mcp, McpServer) and legacy is None
    mcp, legacy = build_iot(ident, legacy=True, on_event=None)
    assert mcp is None and isinstance(legacy, LegacyIotAdapter)


async def test_mcp_request_right_behind_the_hello_is_answered_in_that_session(
    server: ScriptedServer, make_device: Any
) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    server.after_hello = [json.dumps({"type": "mcp", "payload": init})]
    ctl = await make_device(mcp=McpServer(demo_board("b", "2.4.2")))
    await ctl.click()
    await server.wait(lambda: any('"type":"mcp"' in t for t in server.last.texts))
    reply = next(t for t in server.last.texts if '"type":"mcp"' in t)
    assert reply.startswith('{"session_id":"S1","type":"mcp","payload":{"jsonrpc":"2.0","id":1,')
