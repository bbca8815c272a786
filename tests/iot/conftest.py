"""Shared wiring: an McpClient talking to an McpServer in memory (JSON round trip per message)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from iot.mcp_client import McpClient
from iot.mcp_server import McpServer
from iot.things import Board, demo_board


@dataclass
class Wire:
    board: Board
    server: McpServer
    client: McpClient
    sent: list[dict[str, Any]] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


@pytest.fixture
async def wire() -> AsyncIterator[Wire]:
    board = demo_board()
    server = McpServer(board)
    holder: list[Wire] = []

    async def deliver(payload: dict[str, Any]) -> None:
        reply = await server.handle(json.loads(json.dumps(payload)))
        if reply is not None:
            holder[0].client.feed(json.loads(json.dumps(reply)))

    async def send(payload: dict[str, Any]) -> None:
        holder[0].sent.append(payload)
        task = asyncio.create_task(deliver(payload))
        holder[0].tasks.add(task)
        task.add_done_callback(holder[0].tasks.discard)

    client = McpClient(send, call_timeout_s=0.5)
    holder.append(Wire(board, server, client))
    yield holder[0]
    client.close()
    for task in list(holder[0].tasks):
        task.cancel()
    await asyncio.gather(*holder[0].tasks, return_exceptions=True)
