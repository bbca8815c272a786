"""The socket of one transcription connection, and the admission count shared by endpoints."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from server.session.connection import ChannelClosed


class TranscribeChannel:
    """recv/send/close over a ``websockets`` connection (``ChannelClosed`` when it is gone);
    :meth:`abort` drops the TCP connection without a close frame (tests, shutdown)."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        sock = ws.transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # results go out at once

    @property
    def subprotocol(self) -> str | None:
        return self.ws.subprotocol

    async def recv(self) -> str | bytes:
        try:
            return await self.ws.recv()
        except ConnectionClosed as exc:
            raise ChannelClosed(str(exc)) from exc

    async def send(self, data: str | bytes) -> None:
        try:
            await self.ws.send(data)
        except ConnectionClosed as exc:
            raise ChannelClosed(str(exc)) from exc

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code, reason)

    def abort(self) -> None:
        self.ws.transport.abort()


@dataclass
class Admission:
    """Active transcription streams against ``limit`` (HTTP 503 at the handshake beyond it)."""

    limit: int
    active: int = 0

    @property
    def full(self) -> bool:
        return self.active >= self.limit

    def acquire(self) -> bool:
        if self.full:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active = max(0, self.active - 1)
