"""The WebSocket endpoint: a thin shell over ``websockets`` that hands each socket to a session.

Handshake rules (protocol.md §3.1, §9.5): path must match ``websocket.path`` (a query string is
allowed); ``Authorization: Bearer <token>`` is checked only when tokens are configured (missing or
wrong → HTTP 401); beyond ``max_connections`` → HTTP 503. ``Device-Id``, ``Client-Id``,
``Protocol-Version`` and the token may also come as query parameters (``device-id``,
``client-id``, ``protocol-version``, ``authorization``/``token``) for browser clients, which cannot
set headers. No compression, no server pings by default, messages over ``max_message_bytes``
close the socket with 1009 (done by ``websockets``).

Plain HTTP on this port (a board or browser pointed at the WebSocket port instead of the OTA URL,
the classic set-up mistake) gets a short ``426`` text saying what this port is and where the OTA
URL lives, with the header ``X-Xiaozhi-Port: websocket``; any method, not only ``GET`` (the board
POSTs its OTA request). Logged at INFO once per remote address and counted
(:mod:`server.transport.wrong_port`).
"""

from __future__ import annotations

import hmac
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from server.config import WebSocketSettings
from server.security.handshake import HandshakeGuard
from server.session.connection import ChannelClosed, PeerInfo
from server.transport.wrong_port import PORT_HEADER, PlainHttpTolerantConnection, WrongPortAnswer

logger = logging.getLogger(__name__)

SessionHandler = Callable[["WebSocketChannel", PeerInfo], Awaitable[None]]


class ExtraRoutes(Protocol):
    """Other WebSocket endpoints on this port (the transcription service, server.transcribe)."""

    def handles(self, path: str) -> bool: ...

    def select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[str]
    ) -> str | None: ...

    def process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None: ...

    async def serve(self, ws: ServerConnection) -> None: ...


class WebSocketChannel:
    """:class:`~server.session.connection.Channel` over a ``websockets`` connection."""

    def __init__(self, ws: ServerConnection) -> None:
        self._ws = ws

    async def recv(self) -> str | bytes:
        try:
            return await self._ws.recv()
        except ConnectionClosed as exc:
            raise ChannelClosed(str(exc)) from exc

    async def send(self, data: str | bytes) -> None:
        try:
            await self._ws.send(data)
        except ConnectionClosed as exc:
            raise ChannelClosed(str(exc)) from exc

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code, reason)


def _normal_path(path: str) -> str:
    return "/" + path.strip("/")


def _bearer(value: str) -> str:
    value = value.strip()
    return value[7:].strip() if value[:7].lower() == "bearer " else value


class WebSocketServer:
    """Listens on ``settings.host``/``port``; ``port`` is the bound port after :meth:`start`.

    ``ota_port``/``ota_path`` name the OTA URL in the answer to plain HTTP (``ota_port`` may be
    set after start, once the HTTP side is bound); ``on_plain_http`` is called for each such
    request (metrics).
    """

    def __init__(
        self,
        settings: WebSocketSettings,
        handler: SessionHandler,
        *,
        ota_port: int = 8003,
        ota_path: str = "/xiaozhi/ota/",
        on_plain_http: Callable[[], None] | None = None,
        extra_routes: ExtraRoutes | None = None,
        guard: HandshakeGuard | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._extra_routes = extra_routes
        self._guard = guard
        """Lockout, connection limits and tokens (server.security.handshake)."""
        self._ssl = ssl_context
        """TLS (``wss://``) when set."""
        self._settings = settings
        self._handler = handler
        self._wrong_port = WrongPortAnswer(
            websocket_path=settings.path,
            ota_port=ota_port,
            ota_path=ota_path,
            on_request=on_plain_http,
        )
        self._server: Server | None = None
        self._peers: dict[int, PeerInfo] = {}
        self._active = 0
        self.port = 0

    @property
    def ota_port(self) -> int:
        """The HTTP port named in the answer to plain HTTP."""
        return self._wrong_port.ota_port

    @ota_port.setter
    def ota_port(self, port: int) -> None:
        self._wrong_port.ota_port = port

    @property
    def active(self) -> int:
        """Open sessions."""
        return self._active

    async def start(self) -> None:
        """Bind and listen; raises ``OSError`` if the address is in use."""
        s = self._settings
        self._server = await serve(
            self._serve,
            s.host,
            s.port,
            process_request=self._process_request,
            select_subprotocol=self._select_subprotocol,
            create_connection=type(
                "Connection", (PlainHttpTolerantConnection,), {"answer": self._wrong_port}
            ),
            compression=None,
            reuse_port=s.reuse_port or None,
            max_size=s.max_message_bytes,
            ping_interval=s.ping_interval_s,
            ping_timeout=None if s.ping_interval_s is None else 20,
            close_timeout=2,
            open_timeout=(
                10 if self._guard is None else self._guard.settings.limits.handshake_timeout_s
            ),
            ssl=self._ssl,
        )
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])
        self._wrong_port.websocket_port = self.port
        scheme = "wss" if self._ssl is not None else "ws"
        logger.info("WebSocket listening on %s://%s:%d%s", scheme, s.host, self.port, s.path)

    def stop_accepting(self) -> None:
        """Refuse new connections; the open ones go on until they end or :meth:`close`."""
        if self._server is not None:
            self._server.close(close_connections=False)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None

    def _plain_http(self, connection: ServerConnection, request: Request) -> Response:
        text = self._wrong_port(
            "GET", request.path, request.headers.get("Host", ""), _remote(connection)
        )
        response = connection.respond(HTTPStatus.UPGRADE_REQUIRED, text)
        response.headers["Upgrade"] = "websocket"
        response.headers[PORT_HEADER] = "websocket"
        return response

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        s = self._settings
        url = urlsplit(request.path)
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if not upgrade:
            return self._plain_http(connection, request)
        if self._guard is not None and self._server is not None:
            refused = self._guard.admit(connection, self._server.handlers)
            if refused is not None:
                return refused
        if self._extra_routes is not None and self._extra_routes.handles(url.path):
            return self._extra_routes.process_request(connection, request)
        if _normal_path(url.path) != _normal_path(s.path):
            return connection.respond(
                HTTPStatus.NOT_FOUND,
                f"no WebSocket endpoint at {url.path}; the xiaozhi WebSocket path is {s.path}\n",
            )
        if self._active >= s.max_connections:
            logger.warning("refusing connection: %d sessions open (max)", self._active)
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "server is full\n")
        query = {k.lower(): v[-1] for k, v in parse_qs(url.query).items()}
        headers = request.headers

        def value(header: str, *params: str) -> str:
            found = headers.get(header)
            if found:
                return found
            for param in params:
                if query.get(param):
                    return query[param]
            return ""

        if self._guard is not None:
            refused = self._guard.authenticate(
                connection,
                _bearer(value("Authorization", "authorization", "token")),
                value("Device-Id", "device-id", "device_id"),
            )
            if refused is not None:
                return refused
        elif s.tokens:
            token = _bearer(value("Authorization", "authorization", "token"))
            if not any(
                hmac.compare_digest(token.encode(), t.get_secret_value().encode()) for t in s.tokens
            ):
                logger.info(
                    "refusing connection from %s: bad or missing token", _remote(connection)
                )
                return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid token\n")
        raw_version = value("Protocol-Version", "protocol-version")
        version = int(raw_version) if raw_version.strip().isdigit() else None
        self._peers[id(connection)] = PeerInfo(
            device_id=value("Device-Id", "device-id", "device_id"),
            client_id=value("Client-Id", "client-id", "client_id"),
            protocol_version=version,
            remote=_remote(connection),
        )
        return None

    def _select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        if self._extra_routes is None:
            return None
        chosen = self._extra_routes.select_subprotocol(connection, offered)
        return None if chosen is None else Subprotocol(chosen)

    async def _serve(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else ""
        if self._extra_routes is not None and self._extra_routes.handles(urlsplit(path).path):
            try:
                await self._extra_routes.serve(ws)
            finally:
                if self._guard is not None:
                    self._guard.closed(ws)
            return
        peer = self._peers.pop(id(ws), None) or PeerInfo(remote=_remote(ws))
        self._active += 1
        try:
            await self._handler(WebSocketChannel(ws), peer)
        except ChannelClosed:
            pass
        except Exception:
            logger.exception("session of %s failed", peer.device_id or peer.remote)
        finally:
            self._active -= 1
            if self._guard is not None:
                self._guard.closed(ws)
            code = ws.close_code
            how = "hung up without a close frame" if code == 1006 else f"closed (code {code})"
            logger.info("connection %s %s", peer.device_id or peer.remote, how)


def _remote(connection: ServerConnection) -> str:
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if address else "?"
