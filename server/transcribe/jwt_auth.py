"""HS256 JSON Web Tokens (RFC 7519) checked at the handshake: signature, ``exp``, ``sub``.

No dependency: HS256 is an HMAC-SHA256 over ``header.payload``. Only ``alg: HS256`` is
accepted (never ``none``, never RS*), ``exp`` (seconds since the epoch) and ``sub`` (a non-empty
string) are required, ``nbf`` is honoured when present. Errors say what is wrong without
repeating the token: callers must never log it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from server.transcribe.errors import TranscribeError

LEEWAY_S: Final = 5.0
"""Clock skew tolerated on ``exp``/``nbf`` (s)."""


class TokenRejected(TranscribeError):
    """The token is missing, malformed, badly signed or expired; ``reason`` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__("bad-token", reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    exp: float
    admin: bool = False
    """``"admin": true``: may list, download and delete every device's recordings."""
    device: str = ""
    """Optional ``device`` claim."""


def _b64decode(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenRejected("malformed token (not base64url)") from exc


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def encode_hs256(claims: dict[str, Any], key: str) -> str:
    """A signed token (clients and tests; the server only verifies)."""
    header = _b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64encode(signature)}"


def verify_hs256(
    token: str, keys: Sequence[str], *, clock: Callable[[], float] = time.time
) -> Claims:
    """The token's claims if it is signed by one of ``keys`` and valid now; else TokenRejected."""
    if not keys:
        raise TokenRejected("no token keys configured (transcribe.jwt_keys)")
    if not token:
        raise TokenRejected("missing token (Authorization: Bearer <JWT>)")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenRejected("malformed token (expected header.payload.signature)")
    try:
        header = json.loads(_b64decode(parts[0]))
        payload = json.loads(_b64decode(parts[1]))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokenRejected("malformed token (not JSON)") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise TokenRejected("unsupported token algorithm (only HS256)")
    signing_input = f"{parts[0]}.{parts[1]}".encode()
    signature = _b64decode(parts[2])
    if not any(
        hmac.compare_digest(hmac.new(k.encode(), signing_input, hashlib.sha256).digest(), signature)
        for k in keys
    ):
        raise TokenRejected("bad token signature")
    if not isinstance(payload, dict):
        raise TokenRejected("malformed token (claims are not an object)")
    now = clock()
    exp = payload.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise TokenRejected("token has no numeric exp")
    if now > exp + LEEWAY_S:
        raise TokenRejected("token expired")
    nbf = payload.get("nbf")
    if isinstance(nbf, int | float) and not isinstance(nbf, bool) and now + LEEWAY_S < nbf:
        raise TokenRejected("token not valid yet (nbf)")
    sub = payload.get("sub")
    if not isinstance(sub, str) or not sub:
        raise TokenRejected("token has no sub")
    device = payload.get("device")
    return Claims(
        sub=sub,
        exp=float(exp),
        admin=payload.get("admin") is True,
        device=device if isinstance(device, str) else "",
    )


def bearer(value: str) -> str:
    """The token of an ``Authorization`` header value (``Bearer`` optional)."""
    value = value.strip()
    return value[7:].strip() if value[:7].lower() == "bearer " else value
