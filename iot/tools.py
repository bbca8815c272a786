"""What a device tool call gives back, shared by the MCP and legacy IoT paths and the dialogue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """Result of one device tool call: its text, and whether it failed (device error, timeout)."""

    text: str
    is_error: bool = False


ToolCaller = Callable[[str, dict[str, Any]], Awaitable[ToolOutcome]]
"""``await call_tool(name, arguments)`` → :class:`ToolOutcome`; never raises for device errors."""
