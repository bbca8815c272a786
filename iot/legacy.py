"""Legacy ``type:"iot"`` protocol (firmware ≤ v1.7.x, protocol.md §8), device and server sides.

The server turns descriptors back into the MCP tool names ``self.<thing>.<method>`` so the
dialogue sees the same tools in both modes. Commands get no reply on the wire, so a call is
validated locally and answered ``"true"`` once sent.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from iot.thing import IntParam, ToolError, check_range, json_int, snake_case
from iot.things.board import Board
from iot.tools import ToolOutcome
from protocol.mcp import InputSchema, PropertySchema, Tool
from protocol.messages import (
    IotCommand,
    IotCommands,
    IotDescriptor,
    IotDescriptors,
    IotProperty,
    IotStates,
    IotValue,
)

log = logging.getLogger(__name__)

STATUS_TOOL = "self.get_device_status"
_RANGE = re.compile(r"between (-?\d+) and (-?\d+)")

# ----------------------------------------------------------------------------- device side


def descriptors_messages(board: Board, session_id: str = "") -> list[IotDescriptors]:
    """One descriptors message per thing, as the firmware sends them after the channel opens."""
    return [
        IotDescriptors(session_id=session_id, descriptors=[d]) for d in board.legacy_descriptors()
    ]


def states_message(board: Board, session_id: str = "", delta: bool = False) -> IotStates:
    """The full state list, or (``delta``) only things changed since the last one."""
    return IotStates(session_id=session_id, states=board.legacy_states(delta=delta))


async def apply_commands(board: Board, msg: IotCommands) -> list[ToolOutcome]:
    """Run each command in order (no reply goes on the wire; outcomes are for logs/tests)."""
    return [await board.apply_legacy_command(cmd) for cmd in msg.commands]


# ----------------------------------------------------------------------------- server side


def _param_schema(prop: IotProperty) -> PropertySchema:
    if prop.type == "boolean":
        return PropertySchema(type="boolean")
    if prop.type == "string":
        return PropertySchema(type="string")
    match = _RANGE.search(prop.description)
    if match is None:
        return PropertySchema(type="integer")
    return PropertySchema(type="integer", minimum=int(match[1]), maximum=int(match[2]))


def _validate(schema: PropertySchema, name: str, raw: object) -> IotValue:
    if schema.type == "boolean":
        if isinstance(raw, bool):
            return raw
    elif schema.type == "string":
        if isinstance(raw, str):
            return raw
    else:
        value = json_int(raw)
        if value is not None:
            return check_range(IntParam(name, "", schema.minimum, schema.maximum), value)
    raise ToolError(f"Missing valid argument: {name}")


class LegacyIotClient:
    """Server-side view of a legacy board: tools from descriptors, calls sent as commands."""

    def __init__(self, send: Callable[[IotCommands], Awaitable[None]]) -> None:
        self._send = send
        self._descriptors: dict[str, IotDescriptor] = {}
        self.states: dict[str, dict[str, IotValue]] = {}
        """Last known state per thing, by snake_case name."""

    def feed(self, msg: IotDescriptors | IotStates) -> None:
        """Take a descriptors or states message from the device (later ones update earlier)."""
        if isinstance(msg, IotDescriptors):
            for desc in msg.descriptors:
                self._descriptors[desc.name] = desc
        else:
            for state in msg.states:
                self.states.setdefault(snake_case(state.name), {}).update(state.state)

    @property
    def tools(self) -> list[Tool]:
        if not self._descriptors:
            return []
        out = [
            Tool(
                name=STATUS_TOOL,
                description="Provides the real-time state of every device thing as JSON.",
            )
        ]
        for desc in self._descriptors.values():
            for method_name, method in desc.methods.items():
                props = {n: _param_schema(p) for n, p in method.parameters.items()}
                out.append(
                    Tool(
                        name=f"self.{snake_case(desc.name)}.{method_name}",
                        description=method.description,
                        input_schema=InputSchema(properties=props, required=list(props) or None),
                    )
                )
        return out

    def _find(self, name: str) -> tuple[IotDescriptor, str] | None:
        parts = name.split(".")
        if len(parts) != 3 or parts[0] != "self":
            return None
        for desc in self._descriptors.values():
            if snake_case(desc.name) == parts[1] and parts[2] in desc.methods:
                return desc, parts[2]
        return None

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Validate, send one command, answer ``"true"`` (the wire carries no reply)."""
        if name == STATUS_TOOL and self._descriptors:
            return ToolOutcome(json.dumps(self.states, separators=(",", ":"), ensure_ascii=False))
        found = self._find(name)
        if found is None:
            return ToolOutcome(f"Unknown tool: {name}", is_error=True)
        desc, method = found
        args = arguments if isinstance(arguments, dict) else {}
        params: dict[str, IotValue] = {}
        try:
            for pname, prop in desc.methods[method].parameters.items():
                params[pname] = _validate(_param_schema(prop), pname, args.get(pname))
        except ToolError as exc:
            return ToolOutcome(str(exc), is_error=True)
        command = IotCommand(name=desc.name, method=method, parameters=params)
        try:
            await self._send(IotCommands(commands=[command]))
        except Exception as exc:
            log.warning("sending legacy command %s failed: %s", name, exc)
            return ToolOutcome(f"Could not send {name} to the device: {exc}", is_error=True)
        return ToolOutcome("true")
