"""Device-side MCP server: exact result/error shapes, drops, paging, user-only tools."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iot.mcp_server import McpServer
from iot.thing import IntParam, Method, Prop, Thing
from iot.things import Board, demo_board


def req(method: str, params: Any = None, ident: Any = 1) -> dict[str, Any]:
    payload: dict[str, Any] = {"jsonrpc": "2.0", "id": ident, "method": method}
    if params is not None:
        payload["params"] = params
    return payload


def compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


async def test_initialize_exact_and_vision_url_stored() -> None:
    server = McpServer(demo_board("my-board", "1.9.0"))
    reply = await server.handle(
        req("initialize", {"capabilities": {"vision": {"url": "http://h/v", "token": "t"}}}, 7)
    )
    assert compact(reply) == (
        '{"jsonrpc":"2.0","id":7,"result":{"protocolVersion":"2024-11-05",'
        '"capabilities":{"tools":{}},"serverInfo":{"name":"my-board","version":"1.9.0"}}}'
    )
    assert (server.vision_url, server.vision_token) == ("http://h/v", "t")


@pytest.mark.parametrize(
    "payload",
    [
        {"jsonrpc": "1.0", "id": 1, "method": "initialize"},
        {"id": 1, "method": "initialize"},
        req("initialize", ident="1"),
        req("initialize", ident=None),
        req("initialize", ident=True),
        req("tools/list", params=[1]),
        req("notifications/initialized"),
        {"jsonrpc": "2.0", "id": 1, "result": {}},
        {"jsonrpc": "2.0", "id": 1, "method": 5},
        "garbage",
        [],
    ],
)
async def test_dropped_payloads_get_no_reply(payload: Any) -> None:
    assert await McpServer(demo_board()).handle(payload) is None


async def test_float_id_echoed_as_int() -> None:
    reply = await McpServer(demo_board()).handle(req("ping", ident=3.0))
    assert (
        compact(reply)
        == '{"jsonrpc":"2.0","id":3,"error":{"message":"Method not implemented: ping"}}'
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (None, "Missing params"),
        ({"arguments": {}}, "Missing name"),
        ({"name": 5}, "Missing name"),
        ({"name": "self.reboot", "arguments": [1]}, "Invalid arguments"),
        ({"name": "self.reboot", "arguments": None}, "Invalid arguments"),
        ({"name": "self.nope"}, "Unknown tool: self.nope"),
        ({"name": "self.audio_speaker.set_volume"}, "Missing valid argument: volume"),
        ({"name": "self.audio_speaker.set_volume", "arguments": {"volume": 150}},
         "Value exceeds maximum allowed: 100"),
        ({"name": "self.thermostat.set_temperature", "arguments": {"temperature": 9.9}},
         "Value is below minimum allowed: 10"),
    ],
)  # fmt: skip
async def test_error_shapes_have_no_code(params: Any, message: str) -> None:
    reply = await McpServer(demo_board()).handle(req("tools/call", params, 42))
    assert reply == {"jsonrpc": "2.0", "id": 42, "error": {"message": message}}


async def test_tools_call_result_and_injected_failure() -> None:
    board = demo_board()
    server = McpServer(board)
    reply = await server.handle(
        req("tools/call", {"name": "self.audio_speaker.set_volume", "arguments": {"volume": 55.9}})
    )
    assert compact(reply) == (
        '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"true"}],'
        '"isError":false}}'
    )
    assert board.status()["audio_speaker"]["volume"] == 55
    board.inject_failure("self.curtain.open", "Motor stalled")
    reply = await server.handle(req("tools/call", {"name": "self.curtain.open"}, 2))
    assert reply == {"jsonrpc": "2.0", "id": 2, "error": {"message": "Motor stalled"}}
    # user-only tools can be called even though they are not listed
    reply = await server.handle(req("tools/call", {"name": "self.reboot"}, 3))
    assert reply is not None and reply["result"]["content"][0]["text"] == "true"
    assert board.reboot_requests == 1


async def test_default_list_fits_one_page_and_user_tools_flag() -> None:
    server = McpServer(demo_board())
    plain = await server.handle(req("tools/list", {"cursor": ""}))
    assert plain is not None and "nextCursor" not in plain["result"]
    names = [t["name"] for t in plain["result"]["tools"]]
    assert len(names) == 22 and "self.get_system_info" not in names
    full = await server.handle(req("tools/list", {"withUserTools": True}))
    assert full is not None
    tools = full["result"]["tools"]
    assert [t["name"] for t in tools[-2:]] == ["self.get_system_info", "self.reboot"]
    assert tools[-1]["annotations"] == {"audience": ["user"]}


def many_things(count: int, desc_len: int) -> Board:
    things = [
        Thing(
            f"thing_{i:03d}",
            "x",
            (Prop("level", "level", int),),
            {"level": 0},
            (
                Method(
                    "set_level",
                    "d" * desc_len,
                    (IntParam("level", minimum=0, maximum=100),),
                    lambda t, a: t.set("level", a["level"]),
                ),
            ),
        )
        for i in range(count)
    ]
    return Board(things)


async def collect_pages(server: McpServer, limit: int) -> list[dict[str, Any]]:
    pages, cursor = [], ""
    for n in range(200):
        reply = await server.handle(req("tools/list", {"cursor": cursor}, n + 1))
        assert reply is not None and "result" in reply, reply
        assert len(compact(reply["result"]).encode()) <= limit
        pages.append(reply["result"])
        if "nextCursor" not in reply["result"]:
            return pages
        cursor = reply["result"]["nextCursor"]
        assert reply["result"]["tools"] and cursor != reply["result"]["tools"][-1]["name"]
    raise AssertionError("no last page")


async def test_paging_stays_under_8000_bytes_and_chains_cursors() -> None:
    board = many_things(120, 300)
    server = McpServer(board)
    pages = await collect_pages(server, 8000)
    assert len(pages) >= 5
    listed = [t["name"] for p in pages for t in p["tools"]]
    assert listed == [t.name for t in board.mcp_tools()]
    for prev, nxt in itertools.pairwise(pages):
        assert nxt["tools"][0]["name"] == prev["nextCursor"]


@settings(max_examples=25, deadline=None)
@given(count=st.integers(1, 40), desc_len=st.integers(0, 400), limit=st.integers(900, 3000))
async def test_paging_property(count: int, desc_len: int, limit: int) -> None:
    board = many_things(count, desc_len)
    pages = await collect_pages(McpServer(board, page_max_bytes=limit), limit)
    assert [t["name"] for p in pages for t in p["tools"]] == [t.name for t in board.mcp_tools()]


async def test_tool_larger_than_page_is_an_error() -> None:
    server = McpServer(many_things(2, 500), page_max_bytes=300)
    reply = await server.handle(req("tools/list", {}))
    assert reply is not None and reply["error"]["message"].startswith("Failed to add tool ")
