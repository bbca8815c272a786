"""The recordings directory: create, list, find, delete (audited) and sweep by age.

Ids and device names become folder names only after :func:`safe_name` (letters, digits,
``-_.:``; anything else is replaced), so a device id can never escape the directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)
audit = logging.getLogger("server.recordings.audit")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")
META = "meta.json"


def safe_name(value: str) -> str:
    name = _UNSAFE.sub("_", value)[:128].strip(".") or "_"
    return name


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_durably(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


@dataclass(frozen=True)
class RecordingInfo:
    id: str
    device_id: str
    user: str
    endpoint: str
    created_s: float
    folder: Path
    meta: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        files = sorted(p.name for p in self.folder.iterdir() if p.is_file() and p.name != META)
        return {**self.meta, "files": files}


class RecordingStore:
    """One directory of recordings; every method is blocking (file I/O): use a thread."""

    def __init__(self, root: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self._clock = clock

    def create(self, device_id: str, user: str, endpoint: str, **extra: Any) -> RecordingInfo:
        rec_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(self._clock()))}-" + (
            secrets.token_hex(4)
        )
        folder = self.root / safe_name(device_id or "unknown") / rec_id
        folder.mkdir(parents=True)
        meta = {
            "id": rec_id,
            "device_id": device_id,
            "user": user,
            "endpoint": endpoint,
            "created_s": self._clock(),
            **extra,
        }
        write_json_durably(folder / META, meta)
        fsync_dir(folder.parent)
        return self._info(folder, meta)

    def update(self, info: RecordingInfo, **fields: Any) -> RecordingInfo:
        meta = {**info.meta, **fields}
        write_json_durably(info.folder / META, meta)
        return self._info(info.folder, meta)

    def all(self) -> Iterator[RecordingInfo]:
        if not self.root.is_dir():
            return
        for device_dir in sorted(self.root.iterdir()):
            if not device_dir.is_dir():
                continue
            for folder in sorted(device_dir.iterdir()):
                meta = self._read_meta(folder)
                if meta is not None:
                    yield self._info(folder, meta)

    def find(self, rec_id: str) -> RecordingInfo | None:
        return next((r for r in self.all() if r.id == rec_id), None)

    def select(
        self, *, device_id: str | None = None, user: str | None = None
    ) -> list[RecordingInfo]:
        return [
            r
            for r in self.all()
            if (device_id is None or r.device_id == device_id) and (user is None or r.user == user)
        ]

    def delete(
        self, *, device_id: str | None = None, user: str | None = None, by: str = "?"
    ) -> int:
        """Erase every recording of ``device_id`` or ``user``; one audit line; the count."""
        if device_id is None and user is None:
            raise ValueError("delete needs a device or a user")
        doomed = self.select(device_id=device_id, user=user)
        for rec in doomed:
            shutil.rmtree(rec.folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                rec.folder.parent.rmdir()  # the device folder, once empty
        what = f"device {device_id!r}" if device_id is not None else f"user {user!r}"
        audit.info("recordings deleted: %d of %s, by %s", len(doomed), what, by)
        return len(doomed)

    def sweep(self, retention_s: float) -> int:
        """Delete recordings older than ``retention_s``; the count."""
        limit = self._clock() - retention_s
        old = [r for r in self.all() if r.created_s < limit]
        for rec in old:
            shutil.rmtree(rec.folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                rec.folder.parent.rmdir()
        if old:
            audit.info(
                "recordings deleted: %d past retention (%.0f s), by sweeper", len(old), retention_s
            )
        return len(old)

    @staticmethod
    def _read_meta(folder: Path) -> dict[str, Any] | None:
        try:
            meta = json.loads((folder / META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) and "id" in meta else None

    @staticmethod
    def _info(folder: Path, meta: dict[str, Any]) -> RecordingInfo:
        return RecordingInfo(
            id=str(meta["id"]),
            device_id=str(meta.get("device_id", "")),
            user=str(meta.get("user", "")),
            endpoint=str(meta.get("endpoint", "")),
            created_s=float(meta.get("created_s", 0.0)),
            folder=folder,
            meta=meta,
        )
