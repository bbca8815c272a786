"""Per-device tokens: short-lived HS256 JWTs handed out by OTA and checked at the handshake.

A token names one board (``sub`` = its normalised Device-Id, the MAC) and the WebSocket endpoint
(``aud``), carries ``iat``/``exp`` (Unix seconds) and a random ``jti``. The handshake accepts it
only with a good signature, ``alg: HS256`` exactly (never ``none``), the right audience and
issuer, not expired (``LEEWAY_S`` of clock skew) and ``sub`` equal to the Device-Id the board
sends. Reasons returned by :meth:`DeviceTokens.verify` are safe to log: they never contain the
token.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Final

import jwt

from server.devices import normalise_device_id

logger = logging.getLogger(__name__)

ISSUER: Final = "xiaozhi-py"
AUDIENCE: Final = "xiaozhi-websocket"
LEEWAY_S: Final = 5.0
"""Clock skew tolerated on ``exp``/``iat`` (s)."""


def load_secret(path: Path) -> bytes:
    """The signing key in ``path``; a random 32-byte key is created there (0600) when missing."""
    if path.is_file():
        secret = path.read_bytes().strip()
        if len(secret) >= 32:
            return secret
        logger.warning("JWT secret in %s is shorter than 32 bytes; replacing it", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(secret + b"\n")
        out.flush()
        os.fsync(out.fileno())
    return secret


class TokenRefused(Exception):
    """A device token was refused; ``reason`` is safe to log (no token in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DeviceTokens:
    """Issue and verify device tokens with one key; ``clock`` (Unix s) is injectable for tests."""

    def __init__(
        self, secret: bytes, ttl_s: float, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._secret = secret
        self.ttl_s = ttl_s
        self._clock = clock

    def issue(self, device_id: str) -> str:
        """A token for ``device_id`` valid for ``ttl_s`` from now."""
        now = int(self._clock())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": normalise_device_id(device_id),
            "iat": now,
            "exp": now + int(self.ttl_s),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str, device_id: str) -> str:
        """The board's id when ``token`` is good for it; raises :class:`TokenRefused` otherwise."""
        if not token:
            raise TokenRefused("no token")
        if token.count(".") != 2:
            raise TokenRefused("not a device token")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                # times are checked below against our own clock (PyJWT reads time.time())
                options={
                    "require": ["exp", "iat", "sub", "aud", "iss"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidSignatureError as exc:
            raise TokenRefused("bad token signature") from exc
        except jwt.PyJWTError as exc:
            raise TokenRefused(f"invalid token ({type(exc).__name__})") from exc
        now = self._clock()
        exp, iat = claims["exp"], claims["iat"]
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise TokenRefused("invalid token (non-numeric exp/iat)")
        if exp <= now - LEEWAY_S:
            raise TokenRefused("token expired")
        if iat > now + LEEWAY_S:
            raise TokenRefused("token issued in the future")
        subject = str(claims["sub"])
        if not device_id or subject != normalise_device_id(device_id):
            raise TokenRefused("token belongs to another device")
        return subject
