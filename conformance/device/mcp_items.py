"""§10 item 17: the device's MCP server, from the harness's probe replies."""

from __future__ import annotations

import json
from typing import Any

from conformance.device.items import judge
from conformance.device.records import McpProbe
from conformance.report import ItemResult

COMMON_TOOLS = ["self.get_device_status", "self.audio_speaker.set_volume"]


def _error_ok(reply: dict[str, Any] | None, expect: str, p: list[str], what: str) -> None:
    if reply is None:
        p.append(f"{what}: no reply")
        return
    err = reply.get("error")
    if not isinstance(err, dict) or "code" in err or not isinstance(err.get("message"), str):
        p.append(f"{what}: error must be {{'message': ...}} without code, got {reply}")
    elif expect not in err["message"]:
        p.append(f"{what}: message {err['message']!r} lacks {expect!r}")


def check_mcp(probe: McpProbe, user_agent: str | None) -> ItemResult:
    title = "MCP server per §6"
    if not probe.replies:
        return judge(17, title, [], ["no MCP probe ran"], False)
    p: list[str] = []
    init = probe.replies.get("initialize")
    res = init.get("result") if init else None
    if not isinstance(res, dict):
        p.append(f"initialize: no result ({init})")
    else:
        if res.get("protocolVersion") != "2024-11-05" or res.get("capabilities") != {"tools": {}}:
            p.append(f"initialize result {res}")
        info = res.get("serverInfo", {})
        if user_agent and f"{info.get('name')}/{info.get('version')}" != user_agent:
            p.append(f"serverInfo {info} does not match User-Agent {user_agent}")
        if init and init.get("id") != 1:
            p.append("initialize id not echoed as the integer 1")
    tools = [t for page in probe.pages for t in page.get("tools", [])]
    names = [t.get("name") for t in tools]
    if names[: len(COMMON_TOOLS)] != COMMON_TOOLS:
        p.append(f"tools/list must start with {COMMON_TOOLS}, got {names[:3]}")
    for page, nxt in zip(probe.pages, probe.pages[1:], strict=False):
        if page.get("nextCursor") != nxt["tools"][0]["name"]:
            p.append("nextCursor is not the name of the next page's first tool")
    if any(size > 8000 + 2000 for size in probe.page_bytes):
        p.append(f"tools/list page sizes {probe.page_bytes} exceed ~8000 bytes")
    vol = next((t for t in tools if t.get("name") == "self.audio_speaker.set_volume"), None)
    want = {
        "type": "object",
        "properties": {"volume": {"type": "integer", "minimum": 0, "maximum": 100}},
        "required": ["volume"],
    }
    if vol is not None and vol.get("inputSchema") != want:
        p.append(f"set_volume schema {vol.get('inputSchema')}")
    if any("annotations" in t for t in tools):
        p.append("user-only tools listed without withUserTools")
    user = probe.replies.get("tools/list+user")
    user_tools = (user or {}).get("result", {}).get("tools", [])
    if not any(t.get("annotations") == {"audience": ["user"]} for t in user_tools):
        p.append("withUserTools:true lists no user-only tool with annotations.audience")
    status = probe.replies.get("status")
    content: Any = ((status or {}).get("result") or {}).get("content")
    try:
        result: Any = (status or {}).get("result")
        ok = result["isError"] is False and isinstance(json.loads(content[0]["text"]), dict)
    except (TypeError, KeyError, IndexError, ValueError):
        ok = False
    if not ok:
        p.append(f"self.get_device_status result {status}")
    _error_ok(probe.replies.get("unknown_tool"), "Unknown tool: self.no_such_tool", p, "unknown")
    _error_ok(probe.replies.get("volume_too_high"), "maximum", p, "volume 1000")
    _error_ok(probe.replies.get("unknown_method"), "Method not implemented", p, "unknown method")
    if probe.unexpected:
        p.append(f"replies to string id/notification/response: {probe.unexpected[:2]}")
    ev = [
        f"initialize exact; {len(tools)} tools in {len(probe.pages)} pages "
        f"({probe.page_bytes} bytes); user tools only with withUserTools; errors without code; "
        "string ids, notifications and responses dropped"
    ]
    return judge(17, title, p, ev)
