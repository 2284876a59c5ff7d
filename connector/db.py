"""The database handle: an engine and a transaction scope, for SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from .storage import owner_only


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # The file, its WAL and shared memory hold webhook signing secrets (encrypted) and everything
    # else: the service's user alone reads them. SQLite gives the WAL and shared-memory files
    # the database file's permissions when it creates them.
    for _, name, file in cursor.execute("PRAGMA database_list").fetchall():
        if name == "main" and file:
            for suffix in ("", "-wal", "-shm"):
                owner_only(Path(file + suffix))
    # WAL lets readers run beside the one writer; busy_timeout makes concurrent writers
    # (several worker processes) wait their turn instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine whose errors and logs never show statement parameters (hashes, emails)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, hide_parameters=True)
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True
    )


class Database:
    """Owns the engine. ``transaction()`` is the one way code reads and writes: everything in
    the block commits together or not at all."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def after_commit(self, listener: Callable[[Session], None]) -> None:
        """Call ``listener`` with each session of this database right after it commits."""
        event.listen(self._sessions, "after_commit", listener)

    def dispose(self) -> None:
        self.engine.dispose()


def insert_if_absent(session: Session, model: Any, **values: Any) -> bool:
    """Insert a row unless one with its primary key exists (then change nothing); whether this
    call inserted it. Of processes racing to insert the same row, exactly one gets True."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    key = inspect(model).primary_key[0]
    # RETURNING, not the row count, which psycopg leaves at -1 for this statement.
    inserted = session.scalar(
        dialect.insert(model).values(**values).on_conflict_do_nothing().returning(key)
    )
    return inserted is not None
