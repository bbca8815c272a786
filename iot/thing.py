"""Declare a device "thing" once; derive MCP tools, legacy IoT descriptors/states and coercion.

Argument rules follow the firmware's ``McpServer::DoToolCall`` (protocol.md §6): integers from
any JSON number (truncated, saturated to int32), booleans only from JSON true/false, strings only
from JSON strings; a required argument that is absent or of the wrong type gives
``Missing valid argument: X``; an optional one falls back to its default.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from protocol.mcp import InputSchema, PropertySchema, Tool, ToolAnnotations
from protocol.messages import IotDescriptor, IotMethod, IotProperty, IotState

log = logging.getLogger(__name__)

Value = bool | int | str
Result = bool | int | str | dict[str, Any] | None
Handler = Callable[["Thing", dict[str, Value]], "Result | Awaitable[Result]"]
ChangeCallback = Callable[[str, str, Value], None]

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


class ToolError(Exception):
    """A tool call failed; ``str(exc)`` is the device's error message, verbatim."""


@dataclass(frozen=True, slots=True)
class BoolParam:
    name: str
    description: str = ""
    default: bool | None = None


@dataclass(frozen=True, slots=True)
class IntParam:
    name: str
    description: str = ""
    minimum: int | None = None
    maximum: int | None = None
    default: int | None = None


@dataclass(frozen=True, slots=True)
class StrParam:
    name: str
    description: str = ""
    default: str | None = None
    choices: tuple[str, ...] = ()
    """Allowed values (checked before the handler runs); empty = any string."""


Param = BoolParam | IntParam | StrParam


@dataclass(frozen=True, slots=True)
class Prop:
    """A state property (for status and legacy descriptors)."""

    name: str
    description: str
    kind: type[bool] | type[int] | type[str]


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    description: str
    params: tuple[Param, ...]
    handler: Handler
    user_only: bool = False


def camel_case(snake: str) -> str:
    """``kitchen_lamp`` → ``KitchenLamp``."""
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_"))


def snake_case(camel: str) -> str:
    """``KitchenLamp`` → ``kitchen_lamp`` (already-snake names pass through)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", camel).lower()


def param_schema(param: Param) -> PropertySchema:
    """One argument as the firmware writes it (no description, firmware key order)."""
    if isinstance(param, BoolParam):
        return PropertySchema(type="boolean", default=param.default)
    if isinstance(param, IntParam):
        return PropertySchema(
            type="integer", default=param.default, minimum=param.minimum, maximum=param.maximum
        )
    return PropertySchema(type="string", default=param.default)


def input_schema(params: tuple[Param, ...]) -> InputSchema:
    required = [p.name for p in params if p.default is None]
    return InputSchema(
        properties={p.name: param_schema(p) for p in params}, required=required or None
    )


def tool_json(tool: Tool) -> str:
    """The compact JSON of one tool, byte-for-byte as the firmware's cJSON prints it."""
    return json.dumps(tool.to_payload(), separators=(",", ":"), ensure_ascii=False)


def check_range(param: IntParam, value: int) -> int:
    if param.minimum is not None and value < param.minimum:
        raise ToolError(f"Value is below minimum allowed: {param.minimum}")
    if param.maximum is not None and value > param.maximum:
        raise ToolError(f"Value exceeds maximum allowed: {param.maximum}")
    return value


def json_int(value: object) -> int | None:
    """cJSON's ``valueint``: any JSON number, truncated and saturated to int32."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return 0
        if math.isinf(value):
            return _INT32_MAX if value > 0 else _INT32_MIN
        value = int(value)
    return max(_INT32_MIN, min(_INT32_MAX, value))


def coerce_arguments(params: tuple[Param, ...], arguments: object) -> dict[str, Value]:
    """Apply the firmware's argument rules; raise :class:`ToolError` with its exact texts."""
    args = arguments if isinstance(arguments, dict) else {}
    out: dict[str, Value] = {}
    for param in params:
        raw = args.get(param.name)
        found: Value | None = None
        if isinstance(param, BoolParam):
            found = raw if isinstance(raw, bool) else None
        elif isinstance(param, IntParam):
            found = json_int(raw)
        elif isinstance(raw, str):
            found = raw
        if found is None:
            if param.default is None:
                raise ToolError(f"Missing valid argument: {param.name}")
            found = param.default
        if isinstance(param, IntParam):
            assert isinstance(found, int)
            found = check_range(param, found)
        elif isinstance(param, StrParam) and param.choices and found not in param.choices:
            raise ToolError(f"Invalid {param.name}: {found} (allowed: {', '.join(param.choices)})")
        out[param.name] = found
    return out


def result_text(result: Result) -> str:
    """Firmware result encoding: bool → true/false, int → decimal, dict → JSON, None → true."""
    if result is None or isinstance(result, bool):
        return "false" if result is False else "true"
    if isinstance(result, int):
        return str(result)
    if isinstance(result, dict):
        return json.dumps(result, separators=(",", ":"), ensure_ascii=False)
    return result


def _legacy_type(kind: type) -> str:
    return "boolean" if kind is bool else "number" if kind is int else "string"


def _legacy_param(param: Param) -> IotProperty:
    desc = param.description
    if isinstance(param, IntParam):
        if param.minimum is not None and param.maximum is not None:
            desc = f"{desc} (an integer between {param.minimum} and {param.maximum})".strip()
        return IotProperty(description=desc, type="number")
    if isinstance(param, StrParam) and param.choices:
        desc = f"{desc} (one of: {', '.join(param.choices)})".strip()
    return IotProperty(
        description=desc, type="string" if isinstance(param, StrParam) else "boolean"
    )


@dataclass(eq=False)
class Thing:
    """A named thing with typed state and callable methods."""

    name: str
    description: str
    props: tuple[Prop, ...]
    state: dict[str, Value]
    methods: tuple[Method, ...]
    on_change: ChangeCallback | None = field(default=None, repr=False)

    @property
    def legacy_name(self) -> str:
        return camel_case(self.name)

    def get(self, prop: str) -> Value:
        return self.state[prop]

    def set(self, prop: str, value: Value) -> None:
        """Update one property; fires ``on_change(thing, prop, value)`` when it changes."""
        if prop not in self.state:
            raise KeyError(f"{self.name} has no property {prop!r}")
        if self.state[prop] == value and type(self.state[prop]) is type(value):
            return
        self.state[prop] = value
        if self.on_change is not None:
            try:
                self.on_change(self.name, prop, value)
            except Exception:
                log.exception("on_change callback failed for %s.%s", self.name, prop)

    def tool_name(self, method: Method) -> str:
        return f"self.{self.name}.{method.name}"

    def method_tool(self, method: Method) -> Tool:
        return Tool(
            name=self.tool_name(method),
            description=method.description,
            input_schema=input_schema(method.params),
            annotations=ToolAnnotations(audience=["user"]) if method.user_only else None,
        )

    def mcp_tools(self) -> list[Tool]:
        return [self.method_tool(m) for m in self.methods]

    def find_method(self, name: str) -> Method | None:
        return next((m for m in self.methods if m.name == name), None)

    async def invoke(self, method: Method, arguments: object) -> str:
        """Coerce ``arguments``, run the handler, return the firmware's result text."""
        args = coerce_arguments(method.params, arguments)
        result = method.handler(self, args)
        if inspect.isawaitable(result):
            result = await result
        return result_text(result)

    def legacy_descriptor(self) -> IotDescriptor:
        return IotDescriptor(
            name=self.legacy_name,
            description=self.description,
            properties={
                p.name: IotProperty(description=p.description, type=_legacy_type(p.kind))
                for p in self.props
            },
            methods={
                m.name: IotMethod(
                    description=m.description,
                    parameters={p.name: _legacy_param(p) for p in m.params},
                )
                for m in self.methods
                if not m.user_only
            },
        )

    def legacy_state(self) -> IotState:
        return IotState(name=self.legacy_name, state=dict(self.state))
