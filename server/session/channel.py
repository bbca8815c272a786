"""What a session runs on: the message socket, what its handshake said, its log prefix.

Transports (WebSocket, MQTT + UDP) adapt their sockets to :class:`Channel`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from protocol.messages import UdpParams


class ChannelClosed(Exception):
    """The peer went away (close frame or plain TCP drop)."""


class Channel(Protocol):
    """A message socket: ``recv`` returns ``str`` (text) or ``bytes`` (binary)."""

    async def recv(self) -> str | bytes: ...

    async def send(self, data: str | bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


@dataclass
class PeerInfo:
    """What the handshake told us (headers or query parameters)."""

    device_id: str = ""
    client_id: str = ""
    protocol_version: int | None = None
    remote: str = ""
    transport: str = "websocket"
    """``udp`` for an MQTT + UDP session (its hello then carries ``udp``)."""
    udp: UdpParams | None = None
    session_id: str = ""
    """Chosen by the transport (MQTT needs it for ``goodbye``); empty: a new UUID."""


class SessionLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes every line with ``[session device]``."""

    def process(self, msg: object, kwargs: object) -> tuple[str, object]:  # type: ignore[override]
        extra = self.extra or {}
        return f"[{extra.get('session_id')} {extra.get('device_id') or '-'}] {msg}", kwargs
