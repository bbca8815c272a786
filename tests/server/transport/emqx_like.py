"""A stand-in for an external broker with auto-subscription (EMQX's *Auto Subscribe*):
a plain ``amqtt`` broker, anonymous, that subscribes every client to ``devices/p2p/<id>``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from amqtt.adapters import StreamReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker
from amqtt.plugins.base import BasePlugin


class AutoSubscribe(BasePlugin):  # type: ignore[misc]
    @dataclass
    class Config:
        pass

    async def on_broker_client_connected(self, *, client_id: str, client_session: Any) -> None:
        await self.context.add_subscription(client_id, f"devices/p2p/{client_id}", 0)


@contextlib.asynccontextmanager
async def emqx_like_broker() -> AsyncIterator[int]:
    """Yields the port of a running stand-in broker on 127.0.0.1."""
    broker = Broker(
        {
            "listeners": {"default": {"type": "external"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
                f"{__name__}.AutoSubscribe": {},
            },
        },
        plugin_namespace="tests.emqx_like",
    )
    await broker.start()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await broker.external_connected(
            StreamReaderAdapter(reader), StreamWriterAdapter(writer), "default"
        )

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await broker.shutdown()
