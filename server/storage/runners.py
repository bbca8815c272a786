"""How SQL reaches a database: one small runner per backend, the same four calls.

The SQL the store writes uses ``?`` placeholders and only syntax SQLite and PostgreSQL share
(``ON CONFLICT … DO UPDATE``, partial unique indexes); the PostgreSQL runner turns ``?`` into
``%s``. Every call is its own transaction (autocommit), so another process — a second worker,
``xiaozhi-server devices bind`` — sees a committed call at once.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from server.storage.errors import DuplicateKey, StorageUnavailable
from server.storage.migrations import POSTGRES, SCHEMA_VERSION_TABLE, SQLITE, statements

logger = logging.getLogger(__name__)

T = TypeVar("T")
Params = Sequence[Any]
Row = tuple[Any, ...]

MIGRATION_LOCK_KEY = 0x7841_6F7A
"""PostgreSQL advisory lock taken while migrating: N workers starting at once migrate once."""


class SqlRunner(ABC):
    """Runs one statement per call; raises :class:`DuplicateKey` for a unique-key clash."""

    backend: str

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run a write; the number of rows it changed."""

    @abstractmethod
    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    @abstractmethod
    async def migrate(self) -> int:
        """Apply the missing migrations of this backend; the schema version afterwards."""

    @abstractmethod
    async def close(self) -> None: ...


class SqliteRunner(SqlRunner):
    """One private thread owns the connection (WAL, ``synchronous=FULL``: a committed call is on
    disk when it returns, and survives ``kill -9``)."""

    backend = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="storage-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StorageUnavailable("the store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._conn = conn
        return self._conn

    def _execute(self, sql: str, params: Params) -> int:
        try:
            return self._db().execute(sql, tuple(params)).rowcount
        except sqlite3.IntegrityError as exc:
            raise DuplicateKey(str(exc)) from exc

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await self._run(self._execute, sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return await self._run(lambda: self._db().execute(sql, tuple(params)).fetchone())

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._run(lambda: self._db().execute(sql, tuple(params)).fetchall())

    def _migrate(self) -> int:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")  # one process migrates, the others wait then see it done
        try:
            db.execute(SCHEMA_VERSION_TABLE)
            done = {int(r[0]) for r in db.execute("SELECT version FROM schema_version")}
            for version, script in enumerate(SQLITE, start=1):
                if version in done:
                    continue
                for statement in statements(script):
                    db.execute(statement)
                db.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time()))
                logger.info("sqlite store %s: schema version %d applied", self.path, version)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return len(SQLITE)

    async def migrate(self) -> int:
        return await self._run(self._migrate)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=False)


class PostgresRunner(SqlRunner):
    """One psycopg 3 async connection per process (calls are serialised on it); a dropped
    connection (database restarted) is reopened once per call before the error is raised."""

    backend = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: Any = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> Any:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise StorageUnavailable(
                "storage_url names PostgreSQL but psycopg is not installed: "
                "pip install 'xiaozhi-py[postgres]'"
            ) from exc
        if self._conn is None or self._conn.closed:
            try:
                self._conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
            except psycopg.OperationalError as exc:
                raise StorageUnavailable(f"cannot reach PostgreSQL: {exc}".strip()) from exc
        return self._conn

    async def _call(self, sql: str, params: Params, fetch: str) -> Any:
        import psycopg

        query = sql.replace("?", "%s")
        async with self._lock:
            for attempt in (1, 2):
                conn = await self._connection()
                try:
                    cur = await conn.execute(query, tuple(params))
                    if fetch == "one":
                        return await cur.fetchone()
                    if fetch == "all":
                        return await cur.fetchall()
                    return cur.rowcount
                except psycopg.errors.UniqueViolation as exc:
                    raise DuplicateKey(str(exc)) from exc
                except psycopg.OperationalError as exc:
                    if attempt == 2 or not conn.closed:
                        raise StorageUnavailable(f"PostgreSQL: {exc}".strip()) from exc
                    logger.warning("PostgreSQL connection lost (%s); reconnecting", exc)
        raise AssertionError("unreachable")

    async def execute(self, sql: str, params: Params = ()) -> int:
        return int(await self._call(sql, params, "count"))

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        row = await self._call(sql, params, "one")
        return tuple(row) if row is not None else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return [tuple(r) for r in await self._call(sql, params, "all")]

    async def migrate(self) -> int:
        async with self._lock:
            conn = await self._connection()
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
                await conn.execute(SCHEMA_VERSION_TABLE)
                cur = await conn.execute("SELECT version FROM schema_version")
                done = {int(r[0]) for r in await cur.fetchall()}
                for version, script in enumerate(POSTGRES, start=1):
                    if version in done:
                        continue
                    for statement in statements(script):
                        await conn.execute(statement)
                    await conn.execute(
                        "INSERT INTO schema_version VALUES (%s, %s)", (version, time.time())
                    )
                    logger.info("postgresql store: schema version %d applied", version)
        return len(POSTGRES)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
