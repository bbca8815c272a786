"""Versioned schema migrations, one ordered SQL list per backend, applied on start.

Version ``n`` is ``MIGRATIONS[backend][n - 1]``; ``schema_version`` holds the versions applied,
so a store opened on an older database applies only what is missing, in order, each version in
one transaction. Never edit a released version: append a new one. Version 1 of SQLite is the
table :mod:`server.devices` has always created (``IF NOT EXISTS``), so an existing
``devices.sqlite3`` is adopted as it is.
"""

from __future__ import annotations

from typing import Final

SQLITE: Final[tuple[str, ...]] = (
    # 1: device registry and activation codes (the layout of server/devices.py)
    """
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
    """,
    # 2: per-device settings, recordings index, resumable transcription sessions
    """
    CREATE TABLE device_settings (
        device_id TEXT PRIMARY KEY,
        settings TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE recordings (
        recording_id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        user_name TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        created_s REAL NOT NULL,
        folder TEXT NOT NULL,
        meta TEXT NOT NULL
    );
    CREATE INDEX recordings_by_device ON recordings(device_id, created_s);
    CREATE TABLE transcription_sessions (
        token TEXT PRIMARY KEY,
        owner_user TEXT NOT NULL,
        device_id TEXT,
        committed_seq INTEGER NOT NULL,
        next_segment INTEGER NOT NULL,
        finals TEXT NOT NULL,
        updated_s REAL NOT NULL
    );
    """,
)

POSTGRES: Final[tuple[str, ...]] = (
    """
    CREATE TABLE IF NOT EXISTS devices (
        device_id TEXT PRIMARY KEY,
        client_id TEXT,
        board TEXT,
        firmware TEXT,
        serial TEXT,
        first_seen DOUBLE PRECISION NOT NULL,
        last_seen DOUBLE PRECISION NOT NULL,
        bound INTEGER NOT NULL DEFAULT 0,
        bound_at DOUBLE PRECISION,
        activation_code TEXT,
        challenge TEXT
    );
    CREATE UNIQUE INDEX IF NOT EXISTS devices_pending_code
        ON devices(activation_code) WHERE activation_code IS NOT NULL;
    """,
    """
    CREATE TABLE device_settings (
        device_id TEXT PRIMARY KEY,
        settings TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE recordings (
        recording_id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        user_name TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        created_s DOUBLE PRECISION NOT NULL,
        folder TEXT NOT NULL,
        meta TEXT NOT NULL
    );
    CREATE INDEX recordings_by_device ON recordings(device_id, created_s);
    CREATE TABLE transcription_sessions (
        token TEXT PRIMARY KEY,
        owner_user TEXT NOT NULL,
        device_id TEXT,
        committed_seq INTEGER NOT NULL,
        next_segment INTEGER NOT NULL,
        finals TEXT NOT NULL,
        updated_s DOUBLE PRECISION NOT NULL
    );
    """,
)

SCHEMA_VERSION_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_s "
    "DOUBLE PRECISION NOT NULL)"
)


def statements(script: str) -> list[str]:
    """One migration split into statements (they hold no ``;`` inside literals)."""
    return [s.strip() for s in script.split(";") if s.strip()]
