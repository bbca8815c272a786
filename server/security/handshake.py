"""The WebSocket handshake guard: lockout (429), connection limits (503), tokens (401).

:class:`HandshakeGuard` is called by :mod:`server.transport.websocket` for every upgrade:
:meth:`~HandshakeGuard.admit` before the path is routed (every endpoint on the port), then
:meth:`~HandshakeGuard.authenticate` on the xiaozhi path. Tokens accepted: one of
``websocket.tokens`` (operators, simulators), or with ``security.auth.device_tokens`` the board's
own JWT (:mod:`server.security.auth`). Every refusal is counted by code on ``/metrics``
(``auth-refused``, ``auth-locked-out``, ``connection-limit``) and logged without the token.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus

from pydantic import SecretStr
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Response

from server.security.auth import DeviceTokens, TokenRefused
from server.security.limits import FailedAuthLimiter, host_of, over_connection_limits
from server.security.settings import SecuritySettings

logger = logging.getLogger(__name__)

MESSAGE_TOO_BIG = 1009


class HandshakeGuard:
    """Shared by every connection of one WebSocket port; ``clock`` is monotonic seconds."""

    def __init__(
        self,
        settings: SecuritySettings,
        *,
        static_tokens: list[SecretStr],
        max_connections: int,
        device_tokens: DeviceTokens | None = None,
        on_refusal: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        auth = settings.auth
        self.settings = settings
        self._static = [t.get_secret_value().encode() for t in static_tokens]
        self._max_connections = max_connections
        self.device_tokens = device_tokens if auth.device_tokens else None
        self.limiter = FailedAuthLimiter(
            auth.failed_auth_limit, auth.failed_auth_window_s, auth.lockout_s
        )
        self._count = on_refusal or (lambda code: None)
        self._clock = clock

    @property
    def checks_tokens(self) -> bool:
        """True when a handshake must carry a token."""
        return bool(self._static) or self.device_tokens is not None

    def admit(
        self, connection: ServerConnection, open_connections: Iterable[ServerConnection]
    ) -> Response | None:
        """429 for a locked-out IP, 503 beyond the connection limits, else None."""
        ip = host_of(connection.remote_address)
        left = self.limiter.locked(ip, self._clock())
        if left > 0:
            self._count("auth-locked-out")
            response = connection.respond(
                HTTPStatus.TOO_MANY_REQUESTS, "too many failed logins; try again later\n"
            )
            response.headers["Retry-After"] = str(int(left) + 1)
            return response
        limits = self.settings.limits
        exempt = not limits.limit_loopback and _is_loopback(ip)
        refusal = over_connection_limits(
            ip,
            (host_of(c.remote_address) for c in open_connections),
            per_ip=self._max_connections if exempt else limits.max_connections_per_ip,
            total=self._max_connections,
        )
        if refusal is not None:
            self._count("connection-limit")
            logger.warning("refusing connection from %s: %s", ip, refusal.reason)
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, refusal.reason + "\n")
        return None

    def authenticate(
        self, connection: ServerConnection, token: str, device_id: str
    ) -> Response | None:
        """None when the token is good (or none is needed); else 401 (counted, rate-limited)."""
        if not self.checks_tokens:
            return None
        if token and any(hmac.compare_digest(token.encode(), t) for t in self._static):
            return None
        reason = "bad or missing token"
        if self.device_tokens is not None:
            try:
                self.device_tokens.verify(token, device_id)
                return None
            except TokenRefused as exc:
                reason = exc.reason
        ip = host_of(connection.remote_address)
        self._count("auth-refused")
        locked = self.limiter.failed(ip, self._clock())
        logger.info(
            "refusing connection from %s (device %s): %s%s",
            ip,
            device_id or "-",
            reason,
            "; locked out" if locked else "",
        )
        response = connection.respond(HTTPStatus.UNAUTHORIZED, f"unauthorized: {reason}\n")
        response.headers["WWW-Authenticate"] = (  # RFC 6750 §3
            f'Bearer error="invalid_token", error_description="{reason}"'
        )
        return response

    def closed(self, connection: ServerConnection) -> None:
        """A socket ended: count a message that was too big (websockets closed it with 1009)."""
        sent = connection.protocol.close_sent
        if MESSAGE_TOO_BIG in (connection.close_code, sent.code if sent else None):
            self._count("message-too-big")


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False
