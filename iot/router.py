"""One place the dialogue calls device tools, whichever protocol (MCP or legacy) declared them."""

from __future__ import annotations

import logging
from typing import Any

from iot.legacy import LegacyIotClient
from iot.mcp_client import McpClient
from iot.tools import ToolOutcome
from protocol.mcp import Tool

log = logging.getLogger(__name__)


class ToolRouter:
    """``tools`` = MCP tools then legacy ones not already declared; ``call`` is a ToolCaller."""

    def __init__(self, mcp: McpClient | None = None, legacy: LegacyIotClient | None = None) -> None:
        self.mcp = mcp
        self.legacy = legacy

    @property
    def tools(self) -> list[Tool]:
        out = list(self.mcp.tools) if self.mcp is not None else []
        seen = {t.name for t in out}
        if self.legacy is not None:
            out += [t for t in self.legacy.tools if t.name not in seen]
        return out

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Route to whichever side declared ``name``; unknown → error outcome, never raises."""
        if self.mcp is not None and any(t.name == name for t in self.mcp.tools):
            return await self.mcp.call_tool(name, arguments)
        if self.legacy is not None and any(t.name == name for t in self.legacy.tools):
            return await self.legacy.call_tool(name, arguments)
        log.info("dialogue asked for unknown tool %s", name)
        return ToolOutcome(f"Unknown tool: {name}", is_error=True)

    __call__ = call
