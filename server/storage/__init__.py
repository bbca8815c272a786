"""Shared state: one storage interface (:class:`Storage`), SQLite or PostgreSQL underneath.

SQLite (one file, WAL) is the single-machine default; ``storage_url: postgresql://…`` puts the
device registry, activation codes, per-device settings, the recordings index and resumable
transcription sessions in PostgreSQL, shared by every worker on every machine. Schema versions
are applied on start (:mod:`.migrations`).
"""

from server.storage.errors import StorageError, StorageUnavailable
from server.storage.store import RecordingEntry, Storage, TranscriptionState, open_storage

__all__ = [
    "RecordingEntry",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "TranscriptionState",
    "open_storage",
]
