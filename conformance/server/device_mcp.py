"""The checker's device-side MCP server: firmware-shaped answers to the server's requests.

``tools/list`` is answered in two pages (``nextCursor`` = name of the first tool of page two), so
the checker can see whether the server follows the cursor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from protocol.errors import InvalidJsonRpc
from protocol.mcp import (
    CallToolResult,
    InitializeResult,
    InputSchema,
    PropertySchema,
    ServerInfo,
    TextContent,
    Tool,
    ToolsListResult,
    error_response,
    parse_jsonrpc,
)

BOARD_NAME: Final = "bread-compact-wifi"
FIRMWARE_VERSION: Final = "2.4.2"
LAMPS: Final = ("living_room_lamp", "kitchen_lamp", "bedroom_lamp")


def _int(desc: str, lo: int, hi: int) -> PropertySchema:
    return PropertySchema(type="integer", description=desc, minimum=lo, maximum=hi)


def _tool(name: str, desc: str, props: dict[str, PropertySchema] | None = None) -> Tool:
    props = props or {}
    required = [k for k, v in props.items() if v.default is None] or None
    return Tool(
        name=name, description=desc, inputSchema=InputSchema(properties=props, required=required)
    )


def demo_tools() -> list[Tool]:
    """The demo tool set of notes/tools.md, common tools first."""
    text = PropertySchema(type="string")
    tools = [
        _tool("self.get_device_status", "Current state of the speaker, screen and things."),
        _tool(
            "self.audio_speaker.set_volume", "Set the speaker volume.", {"volume": _int("", 0, 100)}
        ),
        _tool(
            "self.screen.set_brightness",
            "Set the screen brightness.",
            {"brightness": _int("", 0, 100)},
        ),
        _tool("self.screen.set_theme", "Set the screen theme (light or dark).", {"theme": text}),
        _tool(
            "self.audio_speaker.set_mute",
            "Mute or unmute.",
            {"muted": PropertySchema(type="boolean")},
        ),
    ]
    for lamp in LAMPS:
        tools += [
            _tool(f"self.{lamp}.turn_on", f"Turn on the {lamp.replace('_', ' ')}."),
            _tool(f"self.{lamp}.turn_off", f"Turn off the {lamp.replace('_', ' ')}."),
            _tool(
                f"self.{lamp}.set_brightness",
                "Set lamp brightness.",
                {"brightness": _int("", 0, 100)},
            ),
            _tool(f"self.{lamp}.set_color", "Set lamp color.", {"color": text}),
        ]
    tools += [
        _tool("self.thermostat.set_temperature", "Target °C.", {"temperature": _int("", 10, 30)}),
        _tool("self.thermostat.set_mode", "heat, cool, auto or off.", {"mode": text}),
        _tool("self.curtain.open", "Open the curtain."),
        _tool("self.curtain.close", "Close the curtain."),
        _tool("self.curtain.set_position", "Percent open.", {"position": _int("", 0, 100)}),
    ]
    return tools


@dataclass
class McpLog:
    """Every payload the server sent in ``mcp`` messages, in order, with our verdicts."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    cursors_offered: list[str] = field(default_factory=list)


class DeviceMcpServer:
    """Answers ``initialize``, ``tools/list`` (2 pages) and ``tools/call`` like a board."""

    def __init__(self) -> None:
        self.tools = demo_tools()
        self.split = len(self.tools) // 2
        self.log = McpLog()

    def handle(self, payload: Any) -> dict[str, Any] | None:
        """The JSON-RPC reply payload for one server payload, or None (dropped, as a board does)."""
        self.log.requests.append(payload if isinstance(payload, dict) else {"_raw": payload})
        try:
            msg = parse_jsonrpc(payload)
        except InvalidJsonRpc as exc:
            self.log.invalid.append(f"{exc}: {json.dumps(payload)[:200]}")
            return None
        method = getattr(msg, "method", None)
        ident = getattr(msg, "id", None)
        if method is None or ident is None or method.startswith("notifications"):
            return None
        params = getattr(msg, "params", None) or {}
        result: Any
        if method == "initialize":
            info = ServerInfo(name=BOARD_NAME, version=FIRMWARE_VERSION)
            result = InitializeResult(serverInfo=info)  # type: ignore[call-arg]  # alias
        elif method == "tools/list":
            cursor = params.get("cursor") or ""
            names = [t.name for t in self.tools]
            start = names.index(cursor) if cursor in names else 0
            if start < self.split:
                nxt = self.tools[self.split].name
                self.log.cursors_offered.append(nxt)
                result = ToolsListResult(tools=self.tools[: self.split], nextCursor=nxt)
            else:
                result = ToolsListResult(tools=self.tools[start:])
        elif method == "tools/call":
            name = params.get("name")
            if name == "self.get_device_status":
                status = {
                    "audio_speaker": {"volume": 70},
                    "screen": {"brightness": 80, "theme": "light"},
                }
                result = CallToolResult(content=[TextContent(text=json.dumps(status))])
            elif any(t.name == name for t in self.tools):
                result = CallToolResult(content=[TextContent(text="true")])
            else:
                return error_response(ident, f"Unknown tool: {name}").to_payload()
        else:
            return error_response(ident, f"Method not implemented: {method}").to_payload()
        return {"jsonrpc": "2.0", "id": ident, "result": result.to_payload()}
