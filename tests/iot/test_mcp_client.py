"""McpClient against McpServer wired in memory: start, calls, errors, timeouts, garbage."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from iot.mcp_client import McpClient, McpClientError
from iot.tools import ToolOutcome
from tests.iot.conftest import Wire


async def test_start_lists_all_tools_with_numeric_ids(wire: Wire) -> None:
    tools = await wire.client.start()
    assert [t.name for t in tools] == [t.name for t in wire.board.mcp_tools()]
    assert wire.client.server_info == {"name": "xiaozhi-sim", "version": "2.4.2"}
    assert [p["method"] for p in wire.sent] == ["initialize", "tools/list"]
    assert all(type(p["id"]) is int for p in wire.sent)
    assert len({p["id"] for p in wire.sent}) == len(wire.sent)


async def test_start_follows_next_cursor(wire: Wire) -> None:
    wire.server.page_max_bytes = 1200
    tools = await wire.client.start(with_user_tools=True)
    assert [t.name for t in tools] == [t.name for t in wire.board.mcp_tools(True)]
    cursors = [p["params"]["cursor"] for p in wire.sent if p["method"] == "tools/list"]
    assert len(cursors) > 3 and cursors[0] == "" and all(cursors[1:])


async def test_call_success_and_device_errors(wire: Wire) -> None:
    await wire.client.start()
    ok = await wire.client.call_tool("self.kitchen_lamp.turn_on", {})
    assert ok == ToolOutcome("true")
    assert wire.board.status()["kitchen_lamp"]["power"] is True
    bad = await wire.client.call_tool("self.audio_speaker.set_volume", {"volume": 300})
    assert bad == ToolOutcome("Value exceeds maximum allowed: 100", is_error=True)
    wire.board.inject_failure("self.curtain.close", "Curtain jammed")
    assert await wire.client.call_tool("self.curtain.close", {}) == ToolOutcome(
        "Curtain jammed", is_error=True
    )


async def test_hanging_tool_times_out_and_late_reply_is_ignored(wire: Wire) -> None:
    await wire.client.start()
    wire.board.inject_delay("self.curtain.open", 0.8)
    outcome = await wire.client.call_tool("self.curtain.open", {})
    assert outcome.is_error and "did not answer self.curtain.open within 0.5 s" in outcome.text
    await asyncio.sleep(0.5)  # the late reply arrives and is dropped without raising
    assert (await wire.client.call_tool("self.curtain.close", {})).text == "true"


async def test_close_fails_pending_calls(wire: Wire) -> None:
    await wire.client.start()
    wire.board.inject_delay("self.curtain.open", math.inf)
    wire.client.call_timeout_s = 5.0
    task = asyncio.create_task(wire.client.call_tool("self.curtain.open", {}))
    await asyncio.sleep(0.05)
    wire.client.close()
    outcome = await asyncio.wait_for(task, 1.0)
    assert outcome.is_error and "closed" in outcome.text
    assert (await wire.client.call_tool("self.curtain.open", {})).is_error


@pytest.mark.parametrize(
    "payload",
    [
        "junk",
        {"jsonrpc": "2.0", "id": "1", "result": {}},
        {"jsonrpc": "2.0", "id": 999, "result": {}},
        {"jsonrpc": "2.0", "id": 1, "error": {"code": "x"}},
        {"jsonrpc": "2.0", "method": "notifications/state_changed"},
        {"jsonrpc": "2.0"},
    ],
)
def test_feed_ignores_garbage(payload: Any) -> None:
    async def send(_: dict[str, Any]) -> None:
        return None

    McpClient(send).feed(payload)


async def test_start_raises_on_silent_device() -> None:
    async def send(_: dict[str, Any]) -> None:
        return None

    with pytest.raises(McpClientError, match="did not answer initialize"):
        await McpClient(send, call_timeout_s=0.1).start()


async def test_send_failure_is_an_error_outcome() -> None:
    async def send(_: dict[str, Any]) -> None:
        raise ConnectionError("socket gone")

    outcome = await McpClient(send).call_tool("self.reboot", {})
    assert outcome.is_error and "socket gone" in outcome.text
