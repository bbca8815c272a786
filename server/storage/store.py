"""The one storage interface: device registry, activation codes, per-device settings, the
recordings index and resumable transcription sessions, over SQLite or PostgreSQL.

The device half keeps :class:`server.devices.DeviceRegistry`'s public API (``seen``, ``get``,
``issue_activation``, ``bind``, ``bind_device``, ``is_bound``, ``list``, ``close``) and its
table, so its callers take either. Times are Unix epoch seconds.

    store = await open_storage(settings)      # migrated, ready
    await store.seen("aa:bb:…"); await store.close()
"""

from __future__ import annotations

import builtins
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.devices import DeviceRecord, DeviceRegistry, normalise_code, normalise_device_id
from server.storage.errors import DuplicateKey
from server.storage.runners import PostgresRunner, SqliteRunner, SqlRunner

logger = logging.getLogger(__name__)

MAX_FIELD_CHARS = 200
_COLUMNS = (
    "device_id, client_id, board, firmware, serial, first_seen, last_seen, bound, bound_at, "
    "activation_code, challenge"
)


def _clip(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value[:MAX_FIELD_CHARS] if value else None


def _record(row: tuple[Any, ...]) -> DeviceRecord:
    dev, client, board, fw, serial, first, last, bound, bound_at, code, challenge = row
    return DeviceRecord(
        dev, client, board, fw, serial, first, last, bool(bound), bound_at, code, challenge
    )


@dataclass(frozen=True, slots=True)
class RecordingEntry:
    """One recording in the index (its audio stays in ``folder`` on the worker that made it)."""

    recording_id: str
    device_id: str
    user: str
    endpoint: str
    created_s: float
    folder: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TranscriptionState:
    """What a resumable ``/ws/asr`` session needs to go on on another worker.

    ``committed_seq``: the last audio packet covered by a final (a resuming client resends the
    packets after it); ``next_segment``: the number the next final gets; ``finals``: the final
    ``result`` messages so far (sent again on resume)."""

    token: str
    owner_user: str
    device_id: str | None
    committed_seq: int
    next_segment: int
    finals: list[dict[str, Any]]
    updated_s: float = 0.0


class Storage(DeviceRegistry):
    """The shared store over one :class:`SqlRunner`; open with :func:`open_storage`.

    A :class:`~server.devices.DeviceRegistry` (every public method overridden), so the OTA,
    activation, dashboard and CLI code that takes a registry takes the store unchanged."""

    def __init__(self, runner: SqlRunner) -> None:  # the base's SQLite thread is not wanted
        self.runner = runner
        self.schema_version = 0

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.runner.backend

    async def migrate(self) -> None:
        self.schema_version = await self.runner.migrate()

    async def close(self) -> None:
        await self.runner.close()

    # -- devices and activation --------------------------------------------------------
    async def seen(
        self,
        device_id: str,
        client_id: str | None = None,
        board: str | None = None,
        firmware: str | None = None,
        serial: str | None = None,
    ) -> DeviceRecord:
        """Insert or update a board; ``None`` fields keep their stored value."""
        dev = normalise_device_id(device_id)
        if not dev:
            raise ValueError("device_id must not be empty")
        now = time.time()
        await self.runner.execute(
            "INSERT INTO devices (device_id, client_id, board, firmware, serial, first_seen, "
            "last_seen) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET "
            "client_id = COALESCE(excluded.client_id, devices.client_id), "
            "board = COALESCE(excluded.board, devices.board), "
            "firmware = COALESCE(excluded.firmware, devices.firmware), "
            "serial = COALESCE(excluded.serial, devices.serial), last_seen = excluded.last_seen",
            (dev, _clip(client_id), _clip(board), _clip(firmware), _clip(serial), now, now),
        )
        record = await self.get(dev)
        assert record is not None
        return record

    async def get(self, device_id: str) -> DeviceRecord | None:
        row = await self.runner.fetchone(
            f"SELECT {_COLUMNS} FROM devices WHERE device_id = ?", (normalise_device_id(device_id),)
        )
        return _record(row) if row else None

    async def issue_activation(self, device_id: str) -> tuple[str, str]:
        """``(code, challenge)`` for a seen device, reusing a pending pair; the 6-digit code is
        unique among pending devices (the partial unique index decides a race between workers).
        Raises ``KeyError`` for an unknown device."""
        dev = normalise_device_id(device_id)
        for _ in range(1000):
            code, challenge = f"{secrets.randbelow(1_000_000):06d}", secrets.token_hex(16)
            try:
                await self.runner.execute(
                    "UPDATE devices SET activation_code = ?, challenge = ? "
                    "WHERE device_id = ? AND activation_code IS NULL",
                    (code, challenge, dev),
                )
            except DuplicateKey:
                continue  # another device holds this code: draw again
            row = await self.runner.fetchone(
                "SELECT activation_code, challenge FROM devices WHERE device_id = ?", (dev,)
            )
            if row is None:
                raise KeyError(f"unknown device {dev!r}")
            if row[0] == code:
                logger.info("activation code %s issued to device %s", code, dev)
            return str(row[0]), str(row[1])
        raise RuntimeError("no free activation code: too many devices pending")

    async def _bind_where(self, where: str, arg: str) -> DeviceRecord | None:
        row = await self.runner.fetchone(f"SELECT device_id FROM devices WHERE {where}", (arg,))
        if row is None:
            return None
        await self.runner.execute(
            "UPDATE devices SET bound = 1, bound_at = COALESCE(bound_at, ?), "
            "activation_code = NULL, challenge = NULL WHERE device_id = ?",
            (time.time(), row[0]),
        )
        logger.info("device %s bound", row[0])
        return await self.get(str(row[0]))

    async def bind(self, code: str) -> DeviceRecord | None:
        """Bind the device whose pending code is ``code``; None when no device has it."""
        digits = normalise_code(code)
        if len(digits) != 6:
            return None
        return await self._bind_where("activation_code = ?", digits)

    async def bind_device(self, device_id: str) -> DeviceRecord | None:
        """Bind a seen device directly (auto-bind, verified HMAC); None if unknown."""
        return await self._bind_where("device_id = ?", normalise_device_id(device_id))

    async def is_bound(self, device_id: str) -> bool:
        record = await self.get(device_id)
        return record is not None and record.bound

    async def list(self) -> builtins.list[DeviceRecord]:
        """Every stored board, most recently seen first."""
        rows = await self.runner.fetchall(
            f"SELECT {_COLUMNS} FROM devices ORDER BY last_seen DESC, device_id"
        )
        return [_record(r) for r in rows]

    # -- per-device settings ------------------------------------------------------------
    async def device_settings(self, device_id: str) -> dict[str, Any]:
        """The board's own settings (``{}`` when none were stored)."""
        row = await self.runner.fetchone(
            "SELECT settings FROM device_settings WHERE device_id = ?",
            (normalise_device_id(device_id),),
        )
        return dict(json.loads(row[0])) if row else {}

    async def set_device_settings(self, device_id: str, settings: dict[str, Any]) -> None:
        """Replace the board's settings (a JSON object)."""
        await self.runner.execute(
            "INSERT INTO device_settings (device_id, settings, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(device_id) DO UPDATE SET settings = excluded.settings, "
            "updated_at = excluded.updated_at",
            (normalise_device_id(device_id), json.dumps(settings, ensure_ascii=False), time.time()),
        )

    # -- recordings index ---------------------------------------------------------------
    async def add_recording(self, entry: RecordingEntry) -> None:
        """Index a recording; an id already indexed is updated (meta rewritten at its end)."""
        await self.runner.execute(
            "INSERT INTO recordings (recording_id, device_id, user_name, endpoint, created_s, "
            "folder, meta) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(recording_id) DO UPDATE SET "
            "meta = excluded.meta, folder = excluded.folder",
            (
                entry.recording_id,
                entry.device_id,
                entry.user,
                entry.endpoint,
                entry.created_s,
                entry.folder,
                json.dumps(entry.meta, ensure_ascii=False),
            ),
        )

    async def recordings(self, device_id: str | None = None) -> builtins.list[RecordingEntry]:
        """Indexed recordings, newest first; only ``device_id``'s when given."""
        sql = (
            "SELECT recording_id, device_id, user_name, endpoint, created_s, folder, meta "
            "FROM recordings"
        )
        params: tuple[Any, ...] = ()
        if device_id is not None:
            sql, params = sql + " WHERE device_id = ?", (device_id,)
        rows = await self.runner.fetchall(sql + " ORDER BY created_s DESC, recording_id", params)
        return [
            RecordingEntry(
                str(r[0]),
                str(r[1]),
                str(r[2]),
                str(r[3]),
                float(r[4]),
                str(r[5]),
                json.loads(r[6]),
            )
            for r in rows
        ]

    async def delete_recording(self, recording_id: str) -> bool:
        """Drop a recording from the index; False if it was not there."""
        n = await self.runner.execute(
            "DELETE FROM recordings WHERE recording_id = ?", (recording_id,)
        )
        return n > 0

    # -- resumable transcription sessions -----------------------------------------------
    async def save_transcription(self, state: TranscriptionState) -> None:
        await self.runner.execute(
            "INSERT INTO transcription_sessions (token, owner_user, device_id, committed_seq, "
            "next_segment, finals, updated_s) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(token) DO UPDATE SET committed_seq = excluded.committed_seq, "
            "next_segment = excluded.next_segment, finals = excluded.finals, "
            "updated_s = excluded.updated_s",
            (
                state.token,
                state.owner_user,
                state.device_id,
                state.committed_seq,
                state.next_segment,
                json.dumps(state.finals, ensure_ascii=False),
                time.time(),
            ),
        )

    async def transcription(self, token: str, owner_user: str) -> TranscriptionState | None:
        """The saved session ``token`` if it belongs to ``owner_user`` (JWT ``sub``)."""
        row = await self.runner.fetchone(
            "SELECT token, owner_user, device_id, committed_seq, next_segment, finals, updated_s "
            "FROM transcription_sessions WHERE token = ? AND owner_user = ?",
            (token, owner_user),
        )
        if row is None:
            return None
        return TranscriptionState(
            str(row[0]), str(row[1]), row[2], int(row[3]), int(row[4]), json.loads(row[5]),
            float(row[6]),
        )  # fmt: skip

    async def end_transcription(self, token: str) -> None:
        await self.runner.execute("DELETE FROM transcription_sessions WHERE token = ?", (token,))

    async def expire_transcriptions(self, older_than_s: float) -> int:
        """Forget sessions not saved for ``older_than_s`` seconds; how many."""
        return await self.runner.execute(
            "DELETE FROM transcription_sessions WHERE updated_s < ?", (time.time() - older_than_s,)
        )


def runner_for(url: str | None, sqlite_path: Path | str) -> SqlRunner:
    """PostgreSQL for a ``postgresql://``/``postgres://`` URL, else SQLite at ``sqlite_path``."""
    if url and url.split(":", 1)[0] in ("postgresql", "postgres"):
        return PostgresRunner(url)
    if url and url.startswith("sqlite:///"):
        return SqliteRunner(url.removeprefix("sqlite:///"))
    if url:
        raise ValueError(
            f"storage_url {url.split('@')[-1]!r}: use postgresql://USER@HOST:PORT/DB or "
            "sqlite:///PATH"
        )
    return SqliteRunner(sqlite_path)


async def open_storage(url: str | None, sqlite_path: Path | str) -> Storage:
    """The store, migrated to the current schema version (raises StorageUnavailable)."""
    store = Storage(runner_for(url, sqlite_path))
    try:
        await store.migrate()
    except BaseException:
        await store.close()
        raise
    return store
