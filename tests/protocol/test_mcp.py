"""MCP JSON-RPC with the firmware's quirks (protocol.md §6)."""

from __future__ import annotations

import pytest

from protocol.errors import InvalidJsonRpc
from protocol.mcp import (
    InitializeResult,
    InputSchema,
    McpErrorResponse,
    McpRequest,
    McpResponse,
    PropertySchema,
    ServerInfo,
    Tool,
    ToolsListResult,
    error_response,
    initialize_request,
    parse_jsonrpc,
    tools_call_request,
    tools_list_request,
)


def test_requests_use_numeric_ids() -> None:
    assert initialize_request(1, vision_url="http://h/v", vision_token="t").to_payload() == {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2024-11-05",
            "capabilities": {"vision": {"url": "http://h/v", "token": "t"}},
        },
    }
    assert tools_list_request(2, "self.screen.set_theme", with_user_tools=True).to_payload() == {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/list",
        "params": {"cursor": "self.screen.set_theme", "withUserTools": True},
    }
    call = tools_call_request(3, "self.audio_speaker.set_volume", {"volume": 30})
    assert call.to_payload()["params"] == {
        "name": "self.audio_speaker.set_volume",
        "arguments": {"volume": 30},
    }


def test_error_has_message_and_no_code() -> None:
    assert error_response(7, "Unknown tool: self.x").to_payload() == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {"message": "Unknown tool: self.x"},
    }


def test_firmware_tool_json_shape() -> None:
    tool = Tool(
        name="self.audio_speaker.set_volume",
        description="Set the volume",
        inputSchema=InputSchema(
            properties={"volume": PropertySchema(type="integer", minimum=0, maximum=100)},
            required=["volume"],
        ),
    )
    assert tool.to_payload() == {
        "name": "self.audio_speaker.set_volume",
        "description": "Set the volume",
        "inputSchema": {
            "type": "object",
            "properties": {"volume": {"type": "integer", "minimum": 0, "maximum": 100}},
            "required": ["volume"],
        },
    }
    assert Tool(name="self.get_device_status").to_payload()["inputSchema"] == {
        "type": "object",
        "properties": {},
    }


def test_parse_classifies() -> None:
    assert isinstance(parse_jsonrpc({"jsonrpc": "2.0", "id": 1, "method": "x"}), McpRequest)
    note = parse_jsonrpc({"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert isinstance(note, McpRequest) and note.is_notification
    result = parse_jsonrpc({"jsonrpc": "2.0", "id": 2, "result": {"tools": []}})
    assert isinstance(result, McpResponse)
    err = parse_jsonrpc({"jsonrpc": "2.0", "id": 3, "error": {"message": "boom"}})
    assert isinstance(err, McpErrorResponse) and err.error.message == "boom"
    assert err.error.code is None


def test_integral_float_id_is_read_as_int() -> None:
    parsed = parse_jsonrpc({"jsonrpc": "2.0", "id": 4.0, "result": {}})
    assert isinstance(parsed, McpResponse) and parsed.id == 4


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"id": 1, "method": "x"},
        {"jsonrpc": "1.0", "id": 1, "method": "x"},
        {"jsonrpc": "2.0", "id": "1", "method": "x"},
        {"jsonrpc": "2.0", "id": True, "method": "x"},
        {"jsonrpc": "2.0", "id": 1.5, "result": {}},
        {"jsonrpc": "2.0", "id": 1, "method": "x", "params": [1]},
        {"jsonrpc": "2.0", "id": 1},
        {"jsonrpc": "2.0", "id": 1, "error": {"code": -1}},
    ],
)
def test_invalid_payloads(payload: object) -> None:
    with pytest.raises(InvalidJsonRpc):
        parse_jsonrpc(payload)


def test_results_round_trip_with_aliases() -> None:
    init = InitializeResult(serverInfo=ServerInfo(name="bread-compact-wifi", version="2.4.2"))
    assert init.to_payload() == {
        "protocolVersion": "2024-11-05",
        "capabilities": {"tools": {}},
        "serverInfo": {"name": "bread-compact-wifi", "version": "2.4.2"},
    }
    page = ToolsListResult.model_validate(
        {
            "tools": [{"name": "a", "description": "", "inputSchema": {"type": "object"}}],
            "nextCursor": "b",
        }
    )
    assert page.next_cursor == "b"
    assert page.to_payload()["nextCursor"] == "b"
