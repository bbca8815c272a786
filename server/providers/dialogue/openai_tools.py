"""Device tools ↔ OpenAI function-calling JSON (names with dots mapped to allowed characters)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from protocol.mcp import Tool

_BAD = re.compile(r"[^a-zA-Z0-9_-]")
MAX_NAME = 64


class ToolNames:
    """Two-way map between device tool names and OpenAI function names (``^[a-zA-Z0-9_-]{1,64}$``).

    Dots become dashes (``self.kitchen_lamp.turn_on`` → ``self-kitchen_lamp-turn_on``); collisions
    get a numeric suffix, so the map is always exact in both directions.
    """

    def __init__(self, tools: Sequence[Tool]) -> None:
        self.to_function: dict[str, str] = {}
        self.to_tool: dict[str, str] = {}
        for tool in tools:
            base = _BAD.sub("_", tool.name.replace(".", "-"))[:MAX_NAME] or "tool"
            name, n = base, 1
            while name in self.to_tool:
                n += 1
                suffix = f"_{n}"
                name = base[: MAX_NAME - len(suffix)] + suffix
            self.to_function[tool.name] = name
            self.to_tool[name] = tool.name


def tool_schema(tool: Tool, function_name: str) -> dict[str, Any]:
    """One ``{"type": "function", ...}`` entry of the request's ``tools``."""
    properties: dict[str, Any] = {}
    for key, prop in tool.input_schema.properties.items():
        schema: dict[str, Any] = {"type": prop.type}
        if prop.description:
            schema["description"] = prop.description
        if prop.minimum is not None:
            schema["minimum"] = prop.minimum
        if prop.maximum is not None:
            schema["maximum"] = prop.maximum
        properties[key] = schema
    required = tool.input_schema.required
    if required is None:
        required = [k for k, p in tool.input_schema.properties.items() if p.default is None]
    return {
        "type": "function",
        "function": {
            "name": function_name,
            "description": tool.description[:1024],
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


def tools_payload(tools: Sequence[Tool], names: ToolNames) -> list[dict[str, Any]]:
    return [tool_schema(t, names.to_function[t.name]) for t in tools]
