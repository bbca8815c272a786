"""Persistent device identity and settings, a small JSON file standing in for the board's NVS.

Holds the MAC (``Device-Id``), UUID v4 (``Client-Id``), board name, firmware version, language,
the OTA-provided ``websocket``/``mqtt`` namespaces and the last ``session_id``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from device.errors import StateFileError

logger = logging.getLogger(__name__)

DEFAULT_BOARD = "bread-compact-wifi"
DEFAULT_FIRMWARE = "2.4.2"
DEFAULT_LANGUAGE = "en-US"

NvsValue = str | int | float


def random_mac(rng: random.Random | None = None) -> str:
    """A random locally-administered unicast MAC, lowercase with colons."""
    r = rng or random.SystemRandom()
    first = (r.randrange(256) & 0xFC) | 0x02
    rest = [r.randrange(256) for _ in range(5)]
    return ":".join(f"{b:02x}" for b in [first, *rest])


@dataclass
class DeviceIdentity:
    """Everything a board keeps across reboots."""

    mac: str = field(default_factory=random_mac)
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    board_name: str = DEFAULT_BOARD
    firmware_version: str = DEFAULT_FIRMWARE
    language: str = DEFAULT_LANGUAGE
    websocket: dict[str, NvsValue] = field(default_factory=dict)
    """NVS namespace ``websocket`` (url, token, version, and any extra keys)."""
    mqtt: dict[str, NvsValue] = field(default_factory=dict)
    session_id: str = ""

    @property
    def user_agent(self) -> str:
        return f"{self.board_name}/{self.firmware_version}"

    @property
    def ws_version(self) -> int:
        """Binary protocol version from NVS (0/absent/invalid → 1)."""
        value = self.websocket.get("version", 1)
        return int(value) if isinstance(value, int | float) and int(value) in (1, 2, 3) else 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeviceIdentity:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class IdentityStore:
    """Loads and atomically saves a :class:`DeviceIdentity` JSON file (``None`` = in memory)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def load(self, **defaults: Any) -> DeviceIdentity:
        """Read the file, or create a new identity (with ``defaults``) and save it."""
        if self.path is not None and self.path.exists():
            try:
                data = json.loads(self.path.read_text("utf-8"))
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
                return DeviceIdentity.from_json(data)
            except (ValueError, TypeError) as exc:
                raise StateFileError(f"device state file {self.path} is unreadable: {exc}") from exc
        identity = DeviceIdentity(**{k: v for k, v in defaults.items() if v is not None})
        self.save(identity)
        return identity

    def save(self, identity: DeviceIdentity) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(identity.to_json(), f, indent=1)
            os.replace(tmp, self.path)
        except OSError as exc:
            raise StateFileError(f"cannot write device state file {self.path}: {exc}") from exc
