"""Device registry persisted in SQLite: boards seen by the OTA endpoint and their activation.

All SQLite work runs on one private worker thread (so the event loop never blocks and the
connection is only ever used by one thread). Each call is its own transaction, so a
``xiaozhi-server devices bind`` run in another process is seen by a running server at once.
The file is in WAL mode with ``synchronous=FULL``: every committed call is on disk when it
returns, so a killed (``kill -9``) or powered-off server restarts with every binding intact.
Times are Unix epoch seconds.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_FIELD_CHARS = 200
"""Longer header/body values are truncated before they are stored."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    client_id TEXT,
    board TEXT,
    firmware TEXT,
    serial TEXT,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    bound INTEGER NOT NULL DEFAULT 0,
    bound_at REAL,
    activation_code TEXT,
    challenge TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS devices_pending_code
    ON devices(activation_code) WHERE activation_code IS NOT NULL;
"""
_COLUMNS = (
    "device_id, client_id, board, firmware, serial, first_seen, last_seen, bound, bound_at, "
    "activation_code, challenge"
)


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """One board as stored. ``activation_code``/``challenge`` are set only while pending."""

    device_id: str
    client_id: str | None
    board: str | None
    firmware: str | None
    serial: str | None
    first_seen: float
    last_seen: float
    bound: bool
    bound_at: float | None
    activation_code: str | None
    challenge: str | None

    @classmethod
    def _from_row(cls, row: tuple[Any, ...]) -> DeviceRecord:
        (dev, client, board, fw, serial, first, last, bound, bound_at, code, challenge) = row
        return cls(
            dev, client, board, fw, serial, first, last, bool(bound), bound_at, code, challenge
        )


def normalise_device_id(device_id: str) -> str:
    """MACs are stored lowercase and trimmed (the board sends lowercase hex with colons)."""
    return device_id.strip().lower()[:MAX_FIELD_CHARS]


def normalise_code(code: str) -> str:
    """Accept ``123 456`` or ``123-456`` as typed by a human."""
    return "".join(ch for ch in code if ch.isdigit())


def _clip(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value[:MAX_FIELD_CHARS] if value else None


class DeviceRegistry:
    """SQLite-backed registry; create once per process, ``await close()`` at shutdown.

    Raises ``sqlite3.Error`` (wrapped in nothing) when the database file is unusable.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="devices-db")
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    # -- public async API ---------------------------------------------------------------
    async def seen(
        self,
        device_id: str,
        client_id: str | None = None,
        board: str | None = None,
        firmware: str | None = None,
        serial: str | None = None,
    ) -> DeviceRecord:
        """Insert or update a board; ``None`` fields keep their stored value."""
        return await self._run(self._seen, device_id, client_id, board, firmware, serial)

    async def get(self, device_id: str) -> DeviceRecord | None:
        """The stored board, or None if never seen."""
        return await self._run(self._get, device_id)

    async def issue_activation(self, device_id: str) -> tuple[str, str]:
        """Return ``(code, challenge)`` for a seen device, reusing a pending pair.

        The 6-digit code is unique among pending devices. Raises ``KeyError`` for an unknown device.
        """
        return await self._run(self._issue, device_id)

    async def bind(self, code: str) -> DeviceRecord | None:
        """Bind the device whose pending code is ``code``; None when no device has that code."""
        return await self._run(self._bind_code, code)

    async def bind_device(self, device_id: str) -> DeviceRecord | None:
        """Bind a seen device directly (auto-bind, verified HMAC); None if unknown."""
        return await self._run(self._bind_device, device_id)

    async def is_bound(self, device_id: str) -> bool:
        record = await self.get(device_id)
        return record is not None and record.bound

    async def list(self) -> builtins.list[DeviceRecord]:
        """Every stored board, most recently seen first."""
        return await self._run(self._list)

    async def close(self) -> None:
        """Close the database and stop the worker thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=False)

    # -- worker-thread internals --------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise RuntimeError("device registry is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
            conn.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            # fsync the WAL at every commit: a binding survives kill -9 and power loss alike
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _get(self, device_id: str) -> DeviceRecord | None:
        row = (
            self._db()
            .execute(
                f"SELECT {_COLUMNS} FROM devices WHERE device_id = ?",
                (normalise_device_id(device_id),),
            )
            .fetchone()
        )
        return DeviceRecord._from_row(row) if row else None

    def _seen(
        self,
        device_id: str,
        client_id: str | None,
        board: str | None,
        firmware: str | None,
        serial: str | None,
    ) -> DeviceRecord:
        dev = normalise_device_id(device_id)
        if not dev:
            raise ValueError("device_id must not be empty")
        now = time.time()
        self._db().execute(
            "INSERT INTO devices (device_id, client_id, board, firmware, serial, first_seen, "
            "last_seen) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET "
            "client_id = COALESCE(excluded.client_id, client_id), "
            "board = COALESCE(excluded.board, board), "
            "firmware = COALESCE(excluded.firmware, firmware), "
            "serial = COALESCE(excluded.serial, serial), last_seen = excluded.last_seen",
            (dev, _clip(client_id), _clip(board), _clip(firmware), _clip(serial), now, now),
        )
        record = self._get(dev)
        assert record is not None
        return record

    def _issue(self, device_id: str) -> tuple[str, str]:
        db = self._db()
        dev = normalise_device_id(device_id)
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT activation_code, challenge FROM devices WHERE device_id = ?", (dev,)
            ).fetchone()
            if row is None:
                raise KeyError(f"unknown device {dev!r}")
            if row[0] and row[1]:
                db.execute("COMMIT")
                return str(row[0]), str(row[1])
            code = self._fresh_code(db)
            challenge = secrets.token_hex(16)
            db.execute(
                "UPDATE devices SET activation_code = ?, challenge = ? WHERE device_id = ?",
                (code, challenge, dev),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        logger.info("activation code %s issued to device %s", code, dev)
        return code, challenge

    @staticmethod
    def _fresh_code(db: sqlite3.Connection) -> str:
        for _ in range(1000):
            code = f"{secrets.randbelow(1_000_000):06d}"
            taken = db.execute(
                "SELECT 1 FROM devices WHERE activation_code = ?", (code,)
            ).fetchone()
            if taken is None:
                return code
        raise RuntimeError("no free activation code: too many devices pending")

    def _mark_bound(self, where: str, arg: str) -> DeviceRecord | None:
        db = self._db()
        row = db.execute(f"SELECT device_id FROM devices WHERE {where}", (arg,)).fetchone()
        if row is None:
            return None
        db.execute(
            "UPDATE devices SET bound = 1, bound_at = COALESCE(bound_at, ?), "
            "activation_code = NULL, challenge = NULL WHERE device_id = ?",
            (time.time(), row[0]),
        )
        logger.info("device %s bound", row[0])
        return self._get(row[0])

    def _bind_code(self, code: str) -> DeviceRecord | None:
        digits = normalise_code(code)
        if len(digits) != 6:
            return None
        return self._mark_bound("activation_code = ?", digits)

    def _bind_device(self, device_id: str) -> DeviceRecord | None:
        return self._mark_bound("device_id = ?", normalise_device_id(device_id))

    def _list(self) -> builtins.list[DeviceRecord]:
        rows = (
            self._db().execute(f"SELECT {_COLUMNS} FROM devices ORDER BY last_seen DESC").fetchall()
        )
        return [DeviceRecord._from_row(row) for row in rows]
