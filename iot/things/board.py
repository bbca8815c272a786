"""A simulated board: its things, the firmware's common and user-only tools, tool dispatch."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from iot.thing import ChangeCallback, Method, Thing, ToolError, Value, result_text
from iot.things.catalog import demo_things
from iot.tools import ToolOutcome
from protocol.mcp import InputSchema, Tool, ToolAnnotations
from protocol.messages import IotCommand, IotDescriptor, IotState

log = logging.getLogger(__name__)

COMMON_FIRST = (
    "self.audio_speaker.set_volume",
    "self.screen.set_brightness",
    "self.screen.set_theme",
)


@dataclass(frozen=True, slots=True)
class BoardTool:
    """One callable tool: its MCP declaration and how to run it (arguments → result text)."""

    tool: Tool
    run: Callable[[object], Awaitable[str]]

    @property
    def user_only(self) -> bool:
        return self.tool.annotations is not None


class Board:
    """Things plus the firmware's tool list; ``on_change(thing, property, value)`` sees updates."""

    def __init__(
        self,
        things: list[Thing],
        *,
        board_name: str = "xiaozhi-sim",
        firmware_version: str = "2.4.2",
    ) -> None:
        self.board_name = board_name
        self.firmware_version = firmware_version
        self.things: dict[str, Thing] = {t.name: t for t in things}
        self.on_change: ChangeCallback | None = None
        self.reboot_requests = 0
        self._failures: dict[str, str] = {}
        self._delays: dict[str, float] = {}
        self._legacy_sent: dict[str, dict[str, Value]] = {}
        for thing in things:
            thing.on_change = self._changed
        self._tools = self._build_tools()

    # ------------------------------------------------------------------ tools

    def _changed(self, thing: str, prop: str, value: Value) -> None:
        if self.on_change is not None:
            self.on_change(thing, prop, value)

    def _thing_tool(self, thing: Thing, method: Method) -> BoardTool:
        async def run(arguments: object) -> str:
            return await thing.invoke(method, arguments)

        return BoardTool(thing.method_tool(method), run)

    def _simple_tool(
        self, name: str, description: str, fn: Callable[[], Any], *, user_only: bool = False
    ) -> BoardTool:
        async def run(arguments: object) -> str:
            return result_text(fn())

        tool = Tool(
            name=name,
            description=description,
            input_schema=InputSchema(),
            annotations=ToolAnnotations(audience=["user"]) if user_only else None,
        )
        return BoardTool(tool, run)

    def _build_tools(self) -> list[BoardTool]:
        by_name = {
            thing.tool_name(m): self._thing_tool(thing, m)
            for thing in self.things.values()
            for m in thing.methods
        }
        status = self._simple_tool(
            "self.get_device_status",
            "Provides the real-time information of the device, including the current status of "
            "the audio speaker, screen, lamps, thermostat and curtain.\nUse this tool for: \n"
            "1. Answering questions about current condition (e.g. what is the current volume?)\n"
            "2. As the first step to control the device (e.g. turn up / down the volume)",
            self.device_status_json,
        )
        common = [status] + [by_name.pop(n) for n in COMMON_FIRST if n in by_name]
        user = [
            self._simple_tool(
                "self.get_system_info",
                "Get the system information of the device.",
                self.system_info,
                user_only=True,
            ),
            self._simple_tool("self.reboot", "Reboot the device.", self._reboot, user_only=True),
        ]
        return (
            common
            + [t for t in by_name.values() if not t.user_only]
            + user
            + [t for t in by_name.values() if t.user_only]
        )

    def _reboot(self) -> bool:
        self.reboot_requests += 1
        return True

    def mcp_tools(self, with_user_tools: bool = False) -> list[Tool]:
        """tools/list order: common tools, things, then user-only ones if asked."""
        return [t.tool for t in self._tools if with_user_tools or not t.user_only]

    def find_tool(self, name: str) -> BoardTool | None:
        return next((t for t in self._tools if t.tool.name == name), None)

    async def call_tool(self, name: str, arguments: object) -> str:
        """Run a tool; raise :class:`ToolError` with the firmware's text on any failure."""
        tool = self.find_tool(name)
        if tool is None:
            raise ToolError(f"Unknown tool: {name}")
        delay = self._delays.get(name)
        if delay is not None:
            if math.isinf(delay):
                await asyncio.Event().wait()
            await asyncio.sleep(delay)
        failure = self._failures.get(name)
        if failure is not None:
            raise ToolError(failure)
        try:
            return await tool.run(arguments)
        except ToolError:
            raise
        except Exception as exc:  # a tool's own exception text is the error message
            log.exception("tool %s failed", name)
            raise ToolError(str(exc) or type(exc).__name__) from exc

    def inject_failure(self, tool_name: str, message: str) -> None:
        """Make ``tool_name`` fail with ``message`` (tests, demos)."""
        self._failures[tool_name] = message

    def inject_delay(self, tool_name: str, seconds: float) -> None:
        """Delay ``tool_name`` by ``seconds`` (``math.inf`` = never answer)."""
        self._delays[tool_name] = seconds

    def clear_injections(self) -> None:
        self._failures.clear()
        self._delays.clear()

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, dict[str, Any]]:
        """Every thing's state, ``{"audio_speaker": {"volume": 70, "muted": False}, ...}``."""
        return {name: dict(thing.state) for name, thing in self.things.items()}

    def device_status_json(self) -> str:
        """``self.get_device_status`` text: firmware keys (speaker, screen) first."""
        return json.dumps(self.status(), separators=(",", ":"), ensure_ascii=False)

    def system_info(self) -> dict[str, Any]:
        return {
            "board": {"type": self.board_name, "name": self.board_name},
            "application": {"name": "xiaozhi", "version": self.firmware_version},
        }

    # ------------------------------------------------------------------ legacy IoT

    def legacy_descriptors(self) -> list[IotDescriptor]:
        return [thing.legacy_descriptor() for thing in self.things.values()]

    def legacy_states(self, delta: bool = False) -> list[IotState]:
        """Full states, or (``delta``) only things changed since the last call."""
        out = []
        for name, thing in self.things.items():
            if delta and self._legacy_sent.get(name) == thing.state:
                continue
            self._legacy_sent[name] = dict(thing.state)
            out.append(thing.legacy_state())
        return out

    async def apply_legacy_command(self, cmd: IotCommand) -> ToolOutcome:
        """Run a legacy command (CamelCase thing name); numbers are truncated to integers."""
        thing = next((t for t in self.things.values() if t.legacy_name == cmd.name), None)
        method = thing.find_method(cmd.method) if thing is not None else None
        if thing is None or method is None:
            log.warning("legacy command for unknown %s.%s", cmd.name, cmd.method)
            return ToolOutcome(f"Unknown method: {cmd.name}.{cmd.method}", is_error=True)
        try:
            return ToolOutcome(await self.call_tool(thing.tool_name(method), cmd.parameters))
        except ToolError as exc:
            return ToolOutcome(str(exc), is_error=True)


def demo_board(board_name: str = "xiaozhi-sim", firmware_version: str = "2.4.2") -> Board:
    """A fresh board with the demo things of /work/notes/tools.md."""
    return Board(demo_things(), board_name=board_name, firmware_version=firmware_version)
