"""The harness's MCP probe of a device (§10 item 17): initialize, every tools/list page, user
tools, calls (good, unknown tool, out of range), an unknown method, and three payloads a board
must drop (string id, notification, response). Replies land in :class:`McpProbe`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from conformance.device.records import McpProbe

PROBE_TIMEOUT_S = 5.0


class McpProber:
    """Sends the probe over ``send`` (a text sender); ``pending`` maps request ids to the futures
    the harness resolves when the device answers."""

    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        pending: dict[int, asyncio.Future[dict[str, Any]]],
        probe: McpProbe,
    ) -> None:
        self._send, self.pending, self.probe = send, pending, probe

    async def _request(
        self, name: str, payload: dict[str, Any], timeout_s: float = PROBE_TIMEOUT_S
    ) -> dict[str, Any] | None:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[payload["id"]] = fut
        await self._send(json.dumps({"type": "mcp", "payload": payload}))
        try:
            reply: dict[str, Any] | None = await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            reply = None
        self.probe.replies[name] = reply
        return reply

    async def run(self) -> None:
        """Every probe in order; ``probe.done`` is set at the end."""
        rpc = {"jsonrpc": "2.0"}
        await self._request(
            "initialize",
            {
                **rpc,
                "id": 1,
                "method": "initialize",
                "params": {
                    "capabilities": {"vision": {"url": "http://127.0.0.1:1/vision", "token": "t"}}
                },
            },
        )
        cursor: str | None = None
        for page in range(20):
            params: dict[str, Any] = {"cursor": cursor} if cursor else {}
            reply = await self._request(
                f"tools/list#{page}",
                {**rpc, "id": 10 + page, "method": "tools/list", "params": params},
            )
            if not reply or not isinstance(reply.get("result"), dict):
                break
            self.probe.pages.append(reply["result"])
            self.probe.page_bytes.append(len(json.dumps(reply["result"], separators=(",", ":"))))
            cursor = reply["result"].get("nextCursor")
            if not cursor:
                break
        await self._request(
            "tools/list+user",
            {**rpc, "id": 40, "method": "tools/list", "params": {"withUserTools": True}},
        )
        await self._request(
            "status",
            {
                **rpc,
                "id": 41,
                "method": "tools/call",
                "params": {"name": "self.get_device_status", "arguments": {}},
            },
        )
        await self._request(
            "unknown_tool",
            {**rpc, "id": 42, "method": "tools/call", "params": {"name": "self.no_such_tool"}},
        )
        await self._request(
            "volume_too_high",
            {
                **rpc,
                "id": 43,
                "method": "tools/call",
                "params": {"name": "self.audio_speaker.set_volume", "arguments": {"volume": 1000}},
            },
        )
        await self._request("unknown_method", {**rpc, "id": 44, "method": "resources/list"})
        # must be dropped silently: string id, notification, response
        for bad in (
            {**rpc, "id": "s-1", "method": "tools/list"},
            {**rpc, "method": "notifications/initialized"},
            {**rpc, "id": 45, "result": {}},
        ):
            await self._send(json.dumps({"type": "mcp", "payload": bad}))
        await asyncio.sleep(1.0)
        self.probe.done = True
