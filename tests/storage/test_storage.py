"""The one storage interface, the same tests on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from server.storage import RecordingEntry, Storage, TranscriptionState, open_storage
from server.storage.migrations import POSTGRES, SQLITE

pytestmark = pytest.mark.e2e  # a real PostgreSQL is started for the session


async def test_schema_is_at_the_latest_version_and_reopening_applies_nothing(
    store: Storage, store_url: str
) -> None:
    assert store.schema_version == len(SQLITE) == len(POSTGRES)
    rows = await store.runner.fetchall("SELECT version FROM schema_version ORDER BY version")
    assert [r[0] for r in rows] == list(range(1, len(SQLITE) + 1))
    again = await open_storage(store_url, "unused")
    try:
        assert len(await again.runner.fetchall("SELECT version FROM schema_version")) == len(rows)
    finally:
        await again.close()


async def test_seen_inserts_then_updates_keeping_known_fields(store: Storage) -> None:
    first = await store.seen("AA:BB:CC:00:11:22", "uuid-1", "board-a", "2.4.2", None)
    later = await store.seen(" aa:bb:cc:00:11:22 ", None, None, "2.4.3", "SN1")
    assert later.device_id == "aa:bb:cc:00:11:22"
    assert (later.client_id, later.board, later.firmware, later.serial) == (
        "uuid-1",
        "board-a",
        "2.4.3",
        "SN1",
    )
    assert later.first_seen == first.first_seen and later.last_seen >= first.last_seen
    assert not later.bound and await store.get("nope") is None
    assert [r.device_id for r in await store.list()] == ["aa:bb:cc:00:11:22"]
    with pytest.raises(ValueError):
        await store.seen("   ")


async def test_activation_codes_are_unique_reused_and_bind_once(store: Storage) -> None:
    for dev in ("dev-1", "dev-2"):
        await store.seen(dev)
    code1, challenge1 = await store.issue_activation("dev-1")
    assert len(code1) == 6 and code1.isdigit() and len(challenge1) == 32
    assert await store.issue_activation("dev-1") == (code1, challenge1)  # pending pair reused
    code2, _ = await store.issue_activation("dev-2")
    assert code2 != code1
    with pytest.raises(KeyError):
        await store.issue_activation("unknown")
    bound = await store.bind(f"{code1[:3]} {code1[3:]}")  # typed by a human
    assert bound is not None and bound.device_id == "dev-1" and bound.bound
    assert bound.activation_code is None and bound.bound_at is not None
    assert await store.bind(code1) is None and await store.bind("12") is None
    assert await store.is_bound("dev-1") and not await store.is_bound("dev-2")
    direct = await store.bind_device("DEV-2")
    assert direct is not None and direct.bound and await store.bind_device("ghost") is None


async def test_concurrent_issuers_agree_on_one_code(store: Storage, store_url: str) -> None:
    """Two workers (two connections) issuing for the same board at once hand out one code."""
    await store.seen("dev-race")
    other = await open_storage(store_url, "unused")
    try:
        a, b = await asyncio.gather(
            store.issue_activation("dev-race"), other.issue_activation("dev-race")
        )
    finally:
        await other.close()
    assert a == b


async def test_device_settings_round_trip_and_replace(store: Storage) -> None:
    assert await store.device_settings("dev-1") == {}
    await store.set_device_settings("DEV-1", {"voice": "zh", "volume": 70})
    assert await store.device_settings("dev-1") == {"voice": "zh", "volume": 70}
    await store.set_device_settings("dev-1", {"voice": "en"})
    assert await store.device_settings("dev-1") == {"voice": "en"}


async def test_recordings_index(store: Storage) -> None:
    old = RecordingEntry("r1", "dev-1", "alice", "assistant", 100.0, "/rec/r1", {"turns": 1})
    new = RecordingEntry("r2", "dev-2", "bob", "upload", 200.0, "/rec/r2", {})
    await store.add_recording(old)
    await store.add_recording(new)
    assert [e.recording_id for e in await store.recordings()] == ["r2", "r1"]
    await store.add_recording(RecordingEntry("r1", "dev-1", "alice", "assistant", 100.0,
                                             "/rec/r1", {"turns": 3}))  # fmt: skip
    (only,) = await store.recordings("dev-1")
    assert only.meta == {"turns": 3} and only.user == "alice" and only.created_s == 100.0
    assert await store.delete_recording("r1") and not await store.delete_recording("r1")
    assert [e.recording_id for e in await store.recordings()] == ["r2"]


async def test_transcription_sessions_belong_to_their_owner(store: Storage) -> None:
    final = {"type": "result", "text": "hello", "seq": 7, "segment": 0, "is_final": True}
    state = TranscriptionState("tok", "alice", "dev-1", 7, 1, [final])
    await store.save_transcription(state)
    got = await store.transcription("tok", "alice")
    assert got is not None and (got.committed_seq, got.next_segment, got.finals) == (7, 1, [final])
    assert await store.transcription("tok", "mallory") is None  # another JWT sub
    await store.save_transcription(TranscriptionState("tok", "alice", "dev-1", 9, 2, [final] * 2))
    got = await store.transcription("tok", "alice")
    assert got is not None and got.committed_seq == 9 and len(got.finals) == 2
    assert await store.expire_transcriptions(3600) == 0
    await store.end_transcription("tok")
    assert await store.transcription("tok", "alice") is None


async def test_a_second_process_sees_a_binding_at_once(store: Storage, store_url: str) -> None:
    await store.seen("dev-1")
    code, _ = await store.issue_activation("dev-1")
    other = await open_storage(store_url, "unused")
    try:
        assert (await other.bind(code)) is not None
    finally:
        await other.close()
    assert await store.is_bound("dev-1")
