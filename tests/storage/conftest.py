"""The storage tests run once per backend: SQLite (a temp file) and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from server.storage import Storage, open_storage
from tests.storage.services import postgres


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'devices.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Storage]:
    s = await open_storage(store_url, "unused")
    if s.backend == "postgresql":  # one cluster per session: each test starts from empty tables
        for table in ("devices", "device_settings", "recordings", "transcription_sessions"):
            await s.runner.execute(f"DELETE FROM {table}")
    try:
        yield s
    finally:
        await s.close()
