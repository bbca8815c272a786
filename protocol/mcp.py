"""MCP (JSON-RPC 2.0) as the firmware speaks it inside ``{"type":"mcp","payload":...}``.

The device is the MCP *server*; the backend is the client. Firmware quirks (protocol.md §6):

* ids are JSON numbers only (string ids are dropped by the device), echoed as integers;
* errors carry ``message`` and **no** ``code``;
* ``tools/list`` pages are cut near 8,000 bytes and continue with ``nextCursor`` = next tool name;
* the device sends no notifications and ignores any whose method starts with ``notifications``.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from protocol.errors import InvalidJsonRpc

MCP_PROTOCOL_VERSION: Final = "2024-11-05"
TOOLS_PAGE_MAX_BYTES: Final = 8000


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    def to_payload(self) -> dict[str, Any]:
        """The JSON object for the ``payload`` of an mcp message."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# ----------------------------------------------------------------------------- envelopes


class McpRequest(_Model):
    """A request (has a numeric ``id``) or notification (``id`` is None)."""

    jsonrpc: Literal["2.0"] = "2.0"
    id: StrictInt | None = None
    method: str
    params: dict[str, Any] | None = None

    @property
    def is_notification(self) -> bool:
        return self.id is None


class McpResponse(_Model):
    jsonrpc: Literal["2.0"] = "2.0"
    id: StrictInt
    result: dict[str, Any]


class McpErrorBody(_Model):
    message: str
    code: int | None = None
    """Absent from the firmware's errors; other peers may send it."""


class McpErrorResponse(_Model):
    jsonrpc: Literal["2.0"] = "2.0"
    id: StrictInt | None = None
    error: McpErrorBody


JsonRpcMessage = McpRequest | McpResponse | McpErrorResponse


def parse_jsonrpc(payload: object) -> JsonRpcMessage:
    """Classify one payload as request/notification, response or error response.

    Raises :class:`InvalidJsonRpc` for anything the firmware would drop or not understand:
    a non-object, ``jsonrpc`` other than ``"2.0"``, a non-numeric id, a non-object ``params``.
    """
    if not isinstance(payload, dict):
        raise InvalidJsonRpc(f"payload must be a JSON object, got {type(payload).__name__}")
    if payload.get("jsonrpc") != "2.0":
        raise InvalidJsonRpc("'jsonrpc' must be the string \"2.0\"")
    ident = payload.get("id")
    if ident is not None and (isinstance(ident, bool) or not isinstance(ident, int | float)):
        raise InvalidJsonRpc(f"id must be a JSON number, got {ident!r}")
    if isinstance(ident, float):
        if not ident.is_integer():
            raise InvalidJsonRpc(f"id must be an integer, got {ident!r}")
        payload = {**payload, "id": int(ident)}
    model: type[JsonRpcMessage]
    if "method" in payload:
        model = McpRequest
    elif "error" in payload:
        model = McpErrorResponse
    elif "result" in payload:
        model = McpResponse
    else:
        raise InvalidJsonRpc("payload has neither 'method', 'result' nor 'error'")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidJsonRpc(f"invalid JSON-RPC {model.__name__}: {exc}") from exc


def error_response(request_id: int, message: str) -> McpErrorResponse:
    """An error shaped as the firmware sends it: ``message`` only, no ``code``."""
    return McpErrorResponse(id=request_id, error=McpErrorBody(message=message))


# ----------------------------------------------------------------------------- tool schemas


class PropertySchema(_Model):
    """One tool argument as the firmware writes it: boolean, integer (range, default) or string."""

    type: Literal["boolean", "integer", "string"]
    description: str | None = None
    default: StrictBool | StrictInt | str | None = None
    minimum: int | None = None
    maximum: int | None = None


class InputSchema(_Model):
    type: Literal["object"] = "object"
    properties: dict[str, PropertySchema] = Field(default_factory=dict)
    required: list[str] | None = None
    """Properties without a default; omitted when empty."""


class ToolAnnotations(_Model):
    audience: list[str]


class Tool(_Model):
    name: str
    description: str = ""
    input_schema: InputSchema = Field(default_factory=InputSchema, alias="inputSchema")
    annotations: ToolAnnotations | None = None


class ServerInfo(_Model):
    name: str
    version: str


class InitializeResult(_Model):
    protocol_version: str = Field(default=MCP_PROTOCOL_VERSION, alias="protocolVersion")
    capabilities: dict[str, Any] = Field(default_factory=lambda: {"tools": {}})
    server_info: ServerInfo = Field(alias="serverInfo")


class ToolsListResult(_Model):
    tools: list[Tool]
    next_cursor: str | None = Field(default=None, alias="nextCursor")


class TextContent(_Model):
    type: Literal["text"] = "text"
    text: str


class CallToolResult(_Model):
    content: list[TextContent]
    is_error: bool = Field(default=False, alias="isError")

    @property
    def text(self) -> str:
        """All text parts joined."""
        return "".join(part.text for part in self.content)


# ----------------------------------------------------------------------------- client requests


def initialize_request(
    request_id: int, *, vision_url: str | None = None, vision_token: str | None = None
) -> McpRequest:
    """``initialize`` as a server sends it (optionally configuring the camera upload URL)."""
    capabilities: dict[str, Any] = {}
    if vision_url is not None:
        vision: dict[str, str] = {"url": vision_url}
        if vision_token is not None:
            vision["token"] = vision_token
        capabilities["vision"] = vision
    return McpRequest(
        id=request_id,
        method="initialize",
        params={"protocolVersion": MCP_PROTOCOL_VERSION, "capabilities": capabilities},
    )


def tools_list_request(
    request_id: int, cursor: str = "", *, with_user_tools: bool = False
) -> McpRequest:
    params: dict[str, Any] = {"cursor": cursor}
    if with_user_tools:
        params["withUserTools"] = True
    return McpRequest(id=request_id, method="tools/list", params=params)


def tools_call_request(request_id: int, name: str, arguments: dict[str, Any]) -> McpRequest:
    return McpRequest(
        id=request_id, method="tools/call", params={"name": name, "arguments": arguments}
    )
