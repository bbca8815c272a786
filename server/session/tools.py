"""The device's tools for one session: MCP (modern boards) or legacy IoT (≤ v1.7.x), routed.

Wraps :mod:`iot`'s ``McpClient``, ``LegacyIotClient`` and ``ToolRouter``; the dialogue sees one
tool list and one ``call_tool`` whatever the board speaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from iot.tools import ToolOutcome
from protocol.mcp import Tool
from protocol.messages import IotCommands, IotDescriptors, IotStates, ServerMcp, WireModel

SendMessage = Callable[[WireModel], Awaitable[None]]


class DeviceTools:
    """Tools of one connected device; ``version`` changes whenever the tool list changes."""

    def __init__(
        self,
        send: SendMessage,
        *,
        call_timeout_s: float,
        log: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self._send = send
        self._timeout = call_timeout_s
        self._log = log
        self._mcp: Any = None
        self._legacy: Any = None
        self._router: Any = None
        self._start_task: asyncio.Task[None] | None = None
        self._on_change: Callable[[], None] | None = None
        self.version = 0

    # ------------------------------------------------------------------ wiring

    def _ensure_router(self) -> Any:
        if self._router is None:
            from iot.router import ToolRouter

            self._router = ToolRouter(mcp=self._mcp, legacy=self._legacy)
        return self._router

    def start_mcp(self, on_change: Callable[[], None]) -> None:
        """Start the MCP client in the background (``initialize``, ``tools/list``); ``on_change``
        is called once the tool list is known. Nothing waits for it: a device that never answers
        simply keeps the tools known so far."""
        if self._mcp is not None:
            return
        self._on_change = on_change
        from iot.mcp_client import McpClient

        async def send_payload(payload: dict[str, Any]) -> None:
            await self._send(ServerMcp(payload=payload))

        self._mcp = McpClient(send_payload, call_timeout_s=self._timeout)
        self._router = None
        self._start_task = asyncio.create_task(self._start_mcp(), name="mcp-start")

    async def _start_mcp(self) -> None:
        try:
            tools = await self._mcp.start()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._log.warning("MCP start failed: %s", exc)
            return
        self.version += 1
        self._log.info("device MCP tools: %d", len(tools))
        if self._on_change is not None:
            self._on_change()

    def feed_mcp(self, payload: dict[str, Any]) -> None:
        if self._mcp is None:
            self._log.info("mcp message without features.mcp in hello; ignored")
            return
        self._mcp.feed(payload)

    def feed_legacy(self, message: IotDescriptors | IotStates) -> None:
        if self._legacy is None:
            from iot.legacy import LegacyIotClient

            async def send_commands(commands: IotCommands) -> None:
                await self._send(commands)

            self._legacy = LegacyIotClient(send_commands)
            self._router = None
        before = len(self.tools)
        self._legacy.feed(message)
        if isinstance(message, IotDescriptors) or len(self.tools) != before:
            self.version += 1

    # ------------------------------------------------------------------ use

    @property
    def tools(self) -> list[Tool]:
        if self._mcp is None and self._legacy is None:
            return []
        return list(self._ensure_router().tools)

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        if self._mcp is None and self._legacy is None:
            return ToolOutcome(f"the device has no tool {name!r}", is_error=True)
        outcome: ToolOutcome = await self._ensure_router().call(name, arguments)
        return outcome

    async def close(self) -> None:
        task, self._start_task = self._start_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for client in (self._mcp, self._legacy):
            closer = getattr(client, "close", None)
            if callable(closer):
                result = closer()
                if asyncio.iscoroutine(result):
                    await result
