"""The recordings store: create, select, delete by device or user (audited), sweep by age."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from server.recordings.store import RecordingStore, safe_name


def test_delete_by_device_leaves_other_devices(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = RecordingStore(tmp_path)
    a1, a2 = store.create("dev/a", "u1", "upload"), store.create("dev/a", "u2", "sequenced")
    b = store.create("dev-b", "u1", "upload")
    with caplog.at_level(logging.INFO, logger="server.recordings.audit"):
        assert store.delete(device_id="dev/a", by="admin from test") == 2
    assert not a1.folder.exists() and not a2.folder.exists() and b.folder.exists()
    assert "recordings deleted: 2 of device 'dev/a', by admin from test" in caplog.text


def test_delete_by_user(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    store.create("d1", "alice", "upload")
    store.create("d2", "alice", "upload")
    kept = store.create("d1", "bob", "upload")
    assert store.delete(user="alice") == 2
    assert [r.id for r in store.all()] == [kept.id]
    with pytest.raises(ValueError):
        store.delete()


def test_sweep_deletes_only_old_ones(tmp_path: Path) -> None:
    now = [1000.0]
    store = RecordingStore(tmp_path, clock=lambda: now[0])
    old = store.create("d", "u", "upload")
    now[0] = 2000.0
    new = store.create("d", "u", "upload")
    assert store.sweep(retention_s=500) == 1
    assert not old.folder.exists() and new.folder.exists()


def test_device_ids_cannot_escape_the_directory(tmp_path: Path) -> None:
    assert safe_name("../../etc") == "_.._etc"
    rec = RecordingStore(tmp_path / "r").create("../../x", "u", "upload")
    assert rec.folder.resolve().is_relative_to((tmp_path / "r").resolve())
