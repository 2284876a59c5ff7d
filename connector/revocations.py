"""How a roll or delete reaches every process that caches authenticated keys.

- **On this machine, at once**: :class:`RevocationSignal`, a 64-bit counter in a file every
  process of one deployment maps into memory. A roll or delete commits, bumps it, and only then
  answers; each request compares it with the value its process last saw (one memory read), so
  no request sent after the answer meets a stale cache, whichever worker takes it.
- **On other machines, pushed**: with PostgreSQL, the roll's transaction sends a ``NOTIFY``
  (:func:`announce`) that a :class:`RevocationListener` thread in each serving process receives
  within milliseconds of the commit.
- **A safety net**: the authenticator still polls the database's generation counter every few
  seconds, for a process that missed both (a CLI run by another user, a listener reconnecting).
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import struct
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

CHANNEL = "templateto_bridge_revocations"
RECONNECT_SECONDS = 1.0
_COUNTER = struct.Struct("<Q")
log = logging.getLogger(__name__)


class RevocationSignal:
    """A counter shared by every process that maps the same file."""

    def __init__(self, runtime_dir: Path) -> None:
        runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(runtime_dir / "revocations", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(descriptor).st_size < _COUNTER.size:
                os.ftruncate(descriptor, _COUNTER.size)
            self._map = mmap.mmap(descriptor, _COUNTER.size)
        finally:
            os.close(descriptor)
        self._lock_path = runtime_dir / "revocations.lock"

    def read(self) -> int:
        return _COUNTER.unpack_from(self._map)[0]

    def bump(self) -> None:
        # Serialised across processes: two rolls that read the same count would both write the
        # same next one, and a process that saw the first would miss the second.
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _COUNTER.pack_into(self._map, 0, self.read() + 1)

    def close(self) -> None:
        self._map.close()


def announce(session: Session) -> None:
    """Tell the other machines, when the transaction commits (PostgreSQL only)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


class RevocationListener:
    """Calls ``on_revoke`` for every roll or delete any machine commits, and after each
    (re)connection, since notifications sent while away are lost. PostgreSQL only."""

    def __init__(self, database_url: str, on_revoke: Callable[[], None]) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._on_revoke = on_revoke
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def needed_for(database_url: str) -> bool:
        return make_url(database_url).get_backend_name() == "postgresql"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name="revocations", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=RECONNECT_SECONDS + 1)

    def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self._on_revoke()
                    while not self._stopping.is_set():
                        # Wakes at least every second to notice stop().
                        for _ in connection.notifies(timeout=RECONNECT_SECONDS):
                            self._on_revoke()
            except psycopg.Error as error:
                log.warning(
                    "revocations from other machines are not heard; reconnecting",
                    extra={"reason": type(error).__name__},
                )
                self._stopping.wait(RECONNECT_SECONDS)
