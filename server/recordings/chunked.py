"""An upload reassembled by chunk index, whatever order and duplicates the chunks come in.

In-order chunks are appended to ``upload.bin`` (fsync), then journaled in ``chunks.log``
(``index length`` a line, fsync): the journal is the truth, so after a crash the data file is
cut back to the journaled length and at most the chunk being written is lost. A chunk that
arrives ahead of its turn waits in ``pending/<index>`` (fsync'd too) until the gap is filled.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Final

from server.recordings.store import fsync_dir

DATA: Final = "upload.bin"
JOURNAL: Final = "chunks.log"
PENDING: Final = "pending"
MAX_PENDING: Final = 512
"""Chunks held ahead of a gap; beyond this the upload is refused (a client that never fills
the gap must not fill the disk)."""


class UploadRefused(Exception):
    """``code``: ``too-many-pending`` or ``bad-index``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ChunkedUpload:
    """Open (or recover) the upload in ``folder``; blocking file I/O."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._pending_dir = folder / PENDING
        self._pending_dir.mkdir(exist_ok=True)
        lengths = self._journal_lengths()
        self.next_index = len(lengths)
        self.size = sum(lengths)
        data = folder / DATA
        with open(data, "ab") as f:
            if f.tell() != self.size:  # a torn append after the last journal line
                f.truncate(self.size)
                f.flush()
                os.fsync(f.fileno())
        self.pending = {int(p.name) for p in self._pending_dir.iterdir() if p.name.isdigit()}
        self.duplicates = 0

    def put(self, index: int, data: bytes) -> bool:
        """Store chunk ``index``; False if it was a duplicate (already stored)."""
        if index < 0:
            raise UploadRefused("bad-index", "chunk index must be ≥ 0")
        if index < self.next_index or index in self.pending:
            self.duplicates += 1
            return False
        if index > self.next_index:
            if len(self.pending) >= MAX_PENDING:
                raise UploadRefused(
                    "too-many-pending", f"more than {MAX_PENDING} chunks ahead of a gap"
                )
            path = self._pending_dir / str(index)
            with open(path, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            fsync_dir(self._pending_dir)
            self.pending.add(index)
            return True
        self._append(data)
        while self.next_index in self.pending:
            path = self._pending_dir / str(self.next_index)
            self._append(path.read_bytes())
            self.pending.discard(self.next_index - 1)
            path.unlink()
        return True

    def missing(self) -> list[int]:
        """Indices not yet received below the highest one received."""
        top = max(self.pending, default=self.next_index - 1)
        return [i for i in range(self.next_index, top + 1) if i not in self.pending]

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with open(self.folder / DATA, "rb") as f:
            for block in iter(lambda: f.read(1 << 16), b""):
                digest.update(block)
        return digest.hexdigest()

    def _append(self, data: bytes) -> None:
        with open(self.folder / DATA, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        with open(self.folder / JOURNAL, "a", encoding="ascii") as j:
            j.write(f"{self.next_index} {len(data)}\n")
            j.flush()
            os.fsync(j.fileno())
        self.next_index += 1
        self.size += len(data)

    def _journal_lengths(self) -> list[int]:
        try:
            text = (self.folder / JOURNAL).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):
            return []
        lines = text.split("\n")[:-1]  # a last line without its newline is torn: not counted
        lengths = []
        valid_bytes = 0
        for n, line in enumerate(lines):
            parts = line.split()
            if len(parts) != 2 or parts[0] != str(n) or not parts[1].isdigit():
                break  # a torn last line: everything before it stands
            lengths.append(int(parts[1]))
            valid_bytes += len(line) + 1
        if valid_bytes != len(text):  # cut the torn tail so new lines start clean
            with open(self.folder / JOURNAL, "r+b") as j:
                j.truncate(valid_bytes)
                j.flush()
                os.fsync(j.fileno())
        return lengths
