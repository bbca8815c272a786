"""Builds the security objects the composition root (:mod:`server.app`) hands down."""

from __future__ import annotations

from collections.abc import Callable

from server.config import Settings
from server.security.auth import DeviceTokens, load_secret
from server.security.handshake import HandshakeGuard
from server.security.settings import AuthSettings


def device_tokens(auth: AuthSettings) -> DeviceTokens | None:
    """The token issuer/verifier when ``security.auth.device_tokens`` is on (reads the key)."""
    if not auth.device_tokens:
        return None
    return DeviceTokens(load_secret(auth.secret_file), auth.token_ttl_s)


def handshake_guard(
    settings: Settings, tokens: DeviceTokens | None, count: Callable[[str], None]
) -> HandshakeGuard:
    """The WebSocket port's guard: lockout, connection limits, static and device tokens."""
    return HandshakeGuard(
        settings.security,
        static_tokens=list(settings.websocket.tokens),
        max_connections=settings.websocket.max_connections,
        device_tokens=tokens,
        on_refusal=count,
    )
