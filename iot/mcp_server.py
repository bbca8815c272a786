"""The device-side MCP server, behaving like the firmware's ``McpServer`` (protocol.md §6)."""

from __future__ import annotations

import json
import logging
from typing import Any

from iot.thing import ToolError, tool_json
from iot.things.board import Board
from protocol.mcp import MCP_PROTOCOL_VERSION, TOOLS_PAGE_MAX_BYTES

log = logging.getLogger(__name__)

_PAGE_SLACK = 30
"""Bytes the firmware reserves for the closing ``]}`` and ``nextCursor`` when cutting a page."""


class McpServer:
    """Answers JSON-RPC payloads for one board; ``handle`` returns the reply payload or None."""

    def __init__(self, board: Board, *, page_max_bytes: int = TOOLS_PAGE_MAX_BYTES) -> None:
        self.board = board
        self.page_max_bytes = page_max_bytes
        self.vision_url: str | None = None
        self.vision_token: str | None = None

    async def handle(self, payload: object) -> dict[str, Any] | None:
        """One request → its reply, or None when the firmware would drop it silently."""
        if not isinstance(payload, dict) or payload.get("jsonrpc") != "2.0":
            return None
        method = payload.get("method")
        if not isinstance(method, str) or method.startswith("notifications"):
            return None
        params = payload.get("params")
        if params is not None and not isinstance(params, dict):
            return None
        ident = payload.get("id")
        if isinstance(ident, bool) or not isinstance(ident, int | float):
            return None
        request_id = int(ident)
        try:
            result = await self._dispatch(method, params)
        except ToolError as exc:
            return {"jsonrpc": "2.0", "id": request_id, "error": {"message": str(exc)}}
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    async def _dispatch(self, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        if method == "initialize":
            self._configure_vision(params)
            return {
                "protocolVersion": MCP_PROTOCOL_VERSION,
                "capabilities": {"tools": {}},
                "serverInfo": {
                    "name": self.board.board_name,
                    "version": self.board.firmware_version,
                },
            }
        if method == "tools/list":
            params = params or {}
            cursor = params.get("cursor")
            with_user = params.get("withUserTools")
            return self._tools_page(cursor if isinstance(cursor, str) else "", with_user is True)
        if method == "tools/call":
            if params is None:
                raise ToolError("Missing params")
            name = params.get("name")
            if not isinstance(name, str):
                raise ToolError("Missing name")
            arguments = params.get("arguments")
            if "arguments" in params and not isinstance(arguments, dict):
                raise ToolError("Invalid arguments")  # includes JSON null, as cJSON sees it
            text = await self.board.call_tool(name, arguments or {})
            return {"content": [{"type": "text", "text": text}], "isError": False}
        raise ToolError(f"Method not implemented: {method}")

    def _configure_vision(self, params: dict[str, Any] | None) -> None:
        caps = (params or {}).get("capabilities")
        vision = caps.get("vision") if isinstance(caps, dict) else None
        if not isinstance(vision, dict):
            return
        url, token = vision.get("url"), vision.get("token")
        if isinstance(url, str):
            self.vision_url = url
            self.vision_token = token if isinstance(token, str) else None
            log.info("vision explain URL set to %s", url)

    def _tools_page(self, cursor: str, with_user_tools: bool) -> dict[str, Any]:
        """The firmware's page cut: stop before a tool that would push the JSON past the limit."""
        tools = self.board.mcp_tools(with_user_tools=True)
        # the firmware reserves 30 bytes; also reserve room for the longest possible nextCursor
        longest = max((len(t.name.encode()) for t in tools), default=0)
        slack = max(_PAGE_SLACK, len('],"nextCursor":""}') + longest)
        text = '{"tools":['
        page: list[dict[str, Any]] = []
        found = cursor == ""
        next_cursor = ""
        for tool in tools:
            if not found:
                if tool.name != cursor:
                    continue
                found = True
            if tool.annotations is not None and not with_user_tools:
                continue
            item = tool_json(tool) + ","
            if len(text.encode()) + len(item.encode()) + slack > self.page_max_bytes:
                next_cursor = tool.name
                break
            text += item
            page.append(json.loads(item[:-1]))
        if not page and tools:
            raise ToolError(f"Failed to add tool {next_cursor} because of payload size limit")
        result: dict[str, Any] = {"tools": page}
        if next_cursor:
            result["nextCursor"] = next_cursor
        return result
