"""MQTT credentials handed to boards in the OTA answer, checked again on CONNECT.

Stateless: the password is an HMAC of the client id and username under a server secret, so the
MQTT endpoint can authenticate a board without a database and a board that re-fetched its OTA
answer keeps working across server restarts (the secret lives in a file, created once).

* ``client_id`` = ``GID_xiaozhi@@@<mac with _>@@@<uuid>`` (the form the xiaozhi gateways use;
  the MAC is read back from it, so a board cannot claim another board's identity);
* ``username`` = the MAC (``Device-Id``);
* ``password`` = ``hex(HMAC-SHA256(secret, client_id + "|" + username))``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from pathlib import Path

CLIENT_PREFIX = "GID_xiaozhi"
_SEPARATOR = "@@@"
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


@dataclass(frozen=True)
class BoardCredentials:
    client_id: str
    username: str
    password: str


def load_secret(path: Path) -> bytes:
    """The secret in ``path`` (hex), created with 32 random bytes (mode 0600) when missing."""
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secret.hex() + "\n")
    return secret


def _password(secret: bytes, client_id: str, username: str) -> str:
    return hmac.new(secret, f"{client_id}|{username}".encode(), hashlib.sha256).hexdigest()


def issue(secret: bytes, device_id: str, client_uuid: str | None) -> BoardCredentials:
    """Credentials for the board with MAC ``device_id`` (lower-cased) and its Client-Id UUID."""
    mac = device_id.strip().lower()
    parts = [CLIENT_PREFIX, mac.replace(":", "_")]
    if client_uuid:
        parts.append(re.sub(r"[^0-9A-Za-z-]", "", client_uuid)[:36])
    client_id = _SEPARATOR.join(parts)
    return BoardCredentials(client_id, mac, _password(secret, client_id, mac))


def device_of(client_id: str) -> str | None:
    """The MAC inside a client id of :func:`issue`, else None."""
    parts = client_id.split(_SEPARATOR)
    if len(parts) < 2 or parts[0] != CLIENT_PREFIX:
        return None
    mac = parts[1].replace("_", ":")
    return mac if _MAC.match(mac) else None


def verify(secret: bytes, client_id: str, username: str | None, password: str | None) -> bool:
    """Whether a CONNECT's credentials are the ones :func:`issue` gave this client id."""
    mac = device_of(client_id)
    if mac is None or username != mac or not password:
        return False
    return hmac.compare_digest(_password(secret, client_id, username), password)
