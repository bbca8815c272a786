"""Chunk reassembly by index and crash recovery from the journal."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from server.recordings.chunked import DATA, JOURNAL, ChunkedUpload, UploadRefused


def test_any_order_with_duplicates_reassembles_exactly(tmp_path: Path) -> None:
    chunks = [os.urandom(random.randint(1, 500)) for _ in range(30)]
    order = list(range(30)) * 2
    random.Random(7).shuffle(order)
    upload = ChunkedUpload(tmp_path)
    stored = [upload.put(i, chunks[i]) for i in order]
    assert stored.count(True) == 30 and upload.duplicates == 30
    assert (tmp_path / DATA).read_bytes() == b"".join(chunks)
    assert upload.missing() == [] and upload.next_index == 30


def test_missing_lists_the_gaps(tmp_path: Path) -> None:
    upload = ChunkedUpload(tmp_path)
    for i in (0, 3, 5):
        upload.put(i, b"x")
    assert upload.missing() == [1, 2, 4]


def test_recovery_cuts_a_torn_append_and_keeps_pending(tmp_path: Path) -> None:
    upload = ChunkedUpload(tmp_path)
    upload.put(0, b"aaaa")
    upload.put(2, b"cccc")
    with open(tmp_path / DATA, "ab") as f:  # a crash after the data write, before the journal
        f.write(b"bb")
    with open(tmp_path / JOURNAL, "a") as f:
        f.write("1 9")  # and a torn journal line
    again = ChunkedUpload(tmp_path)
    assert (again.next_index, again.size, again.pending) == (1, 4, {2})
    assert (tmp_path / DATA).read_bytes() == b"aaaa"
    again.put(1, b"bbbb")
    assert (tmp_path / DATA).read_bytes() == b"aaaabbbbcccc"
    assert (tmp_path / JOURNAL).read_text() == "0 4\n1 4\n2 4\n"
    assert ChunkedUpload(tmp_path).next_index == 3


def test_negative_index_refused(tmp_path: Path) -> None:
    with pytest.raises(UploadRefused):
        ChunkedUpload(tmp_path).put(-1, b"x")
