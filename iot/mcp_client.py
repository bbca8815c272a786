"""Server-side MCP client for a device, over any transport (protocol.md §6, §9 item 16).

The caller supplies ``send(payload)`` (wraps it in ``{"type":"mcp","payload":...}``) and passes
every received ``payload`` to :meth:`McpClient.feed`. Ids are always integers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from iot.tools import ToolOutcome
from protocol.errors import InvalidJsonRpc
from protocol.mcp import (
    McpErrorResponse,
    McpRequest,
    McpResponse,
    Tool,
    initialize_request,
    parse_jsonrpc,
    tools_call_request,
    tools_list_request,
)

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]


class McpClientError(Exception):
    """The device did not complete initialize/tools/list (error, timeout, closed)."""


class _Closed(Exception):
    pass


class McpClient:
    """Talks MCP to one device: ``start()`` once, then ``call_tool`` as often as needed."""

    def __init__(
        self,
        send: Send,
        *,
        call_timeout_s: float = 5.0,
        max_pages: int = 16,
        vision_url: str | None = None,
        vision_token: str | None = None,
    ) -> None:
        self._send = send
        self.call_timeout_s = call_timeout_s
        self.max_pages = max_pages
        self._vision_url = vision_url
        self._vision_token = vision_token
        self._next_id = 1
        self._pending: dict[int, asyncio.Future[McpResponse | McpErrorResponse]] = {}
        self._closed = False
        self.tools: list[Tool] = []
        self.server_info: dict[str, Any] | None = None

    # ------------------------------------------------------------------ plumbing

    def _take_id(self) -> int:
        ident = self._next_id
        self._next_id += 1
        return ident

    async def _request(self, request: McpRequest) -> McpResponse | McpErrorResponse:
        if self._closed:
            raise _Closed("MCP client closed")
        assert request.id is not None
        future: asyncio.Future[McpResponse | McpErrorResponse] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[request.id] = future
        try:
            await self._send(request.to_payload())
            return await asyncio.wait_for(future, self.call_timeout_s)
        finally:
            self._pending.pop(request.id, None)

    def feed(self, payload: object) -> None:
        """Deliver one received payload; unknown ids and garbage are logged, never raised."""
        try:
            message = parse_jsonrpc(payload)
        except InvalidJsonRpc as exc:
            log.warning("ignoring invalid MCP payload: %s", exc)
            return
        if isinstance(message, McpRequest):
            log.debug("ignoring MCP request/notification from device: %s", message.method)
            return
        future = self._pending.get(message.id) if message.id is not None else None
        if future is None or future.done():
            if isinstance(message.id, int) and 0 < message.id < self._next_id:
                log.info(
                    "MCP reply %d came after its %.1f s timeout", message.id, self.call_timeout_s
                )
            else:
                log.warning("ignoring MCP reply with unknown id %r", message.id)
            return
        future.set_result(message)

    def close(self) -> None:
        """Fail every pending request; later calls return an error outcome."""
        self._closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(_Closed("MCP client closed"))
        self._pending.clear()

    # ------------------------------------------------------------------ API

    async def start(self, *, with_user_tools: bool = False) -> list[Tool]:
        """``initialize`` then ``tools/list`` following ``nextCursor`` (≤ ``max_pages`` pages)."""
        init = initialize_request(
            self._take_id(), vision_url=self._vision_url, vision_token=self._vision_token
        )
        result = await self._checked(init)
        info = result.get("serverInfo")
        self.server_info = info if isinstance(info, dict) else None
        tools: list[Tool] = []
        cursor = ""
        for _ in range(self.max_pages):
            page = await self._checked(
                tools_list_request(self._take_id(), cursor, with_user_tools=with_user_tools)
            )
            for raw in page.get("tools") or []:
                try:
                    tools.append(Tool.model_validate(raw))
                except ValidationError as exc:
                    log.warning("skipping malformed tool %r: %s", raw, exc)
            next_cursor = page.get("nextCursor")
            if not isinstance(next_cursor, str) or not next_cursor or next_cursor == cursor:
                break
            cursor = next_cursor
        else:
            log.warning("tools/list: stopped after %d pages", self.max_pages)
        self.tools = tools
        return tools

    async def _checked(self, request: McpRequest) -> dict[str, Any]:
        try:
            reply = await self._request(request)
        except TimeoutError as exc:
            raise McpClientError(
                f"device did not answer {request.method} within {self.call_timeout_s} s"
            ) from exc
        except _Closed as exc:
            raise McpClientError(str(exc)) from exc
        except Exception as exc:  # transport send failure
            raise McpClientError(f"could not send {request.method}: {exc}") from exc
        if isinstance(reply, McpErrorResponse):
            raise McpClientError(f"{request.method} failed: {reply.error.message}")
        return reply.result

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        """``tools/call``; every failure (device error, timeout, closed) is an error outcome."""
        try:
            reply = await self._request(tools_call_request(self._take_id(), name, arguments))
        except TimeoutError:
            return ToolOutcome(
                f"Device did not answer {name} within {self.call_timeout_s:g} s", is_error=True
            )
        except _Closed:
            return ToolOutcome(f"Device connection closed before {name} finished", is_error=True)
        except Exception as exc:  # transport send failure
            log.warning("sending tools/call %s failed: %s", name, exc)
            return ToolOutcome(f"Could not send {name} to the device: {exc}", is_error=True)
        if isinstance(reply, McpErrorResponse):
            return ToolOutcome(reply.error.message, is_error=True)
        content = reply.result.get("content")
        if not isinstance(content, list):
            return ToolOutcome(f"Malformed result from {name}", is_error=True)
        text = "".join(
            str(part.get("text") or part.get("image") or "")
            for part in content
            if isinstance(part, dict)
        )
        return ToolOutcome(text, is_error=reply.result.get("isError") is True)
