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
import stat
import struct
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from .errors import ConfigError

CHANNEL = "templateto_bridge_revocations"
RECONNECT_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 5
# The file: a count of revocations, then the ids of the keys of the last SLOTS of them, so that
# a process catching up drops only those keys' cached answers (a tenant rolling in a loop must
# not empty everyone's caches); further behind, it drops everything.
SLOTS = 64
_COUNT = struct.Struct("<Q")
_KEY_ID_BYTES = 32
_SIZE = _COUNT.size + SLOTS * _KEY_ID_BYTES
log = logging.getLogger(__name__)


class RevocationSignal:
    """The revocations of keys, shared by every process that maps the same file."""

    def __init__(self, runtime_dir: Path) -> None:
        self._path = runtime_dir / "revocations"
        try:
            _ensure_private_dir(runtime_dir)
            self._attach()
        except OSError as error:
            raise ConfigError(
                f"BRIDGE_RUNTIME_DIR: cannot use {self._path} ({error.strerror}); point it at a "
                "directory of this user, private to it"
            ) from None

    def _attach(self) -> None:
        # O_NOFOLLOW and the owner check: nobody else's file (or a link to ours) is written.
        descriptor = os.open(
            self._path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or status.st_uid != os.getuid():
            os.close(descriptor)
            raise ConfigError(
                f"BRIDGE_RUNTIME_DIR: {self._path} is not a file of this user; remove it"
            )
        if status.st_size < _SIZE:
            os.ftruncate(descriptor, _SIZE)
        # Kept open: it is the lock bump() takes, and tells whether the file was replaced.
        self._descriptor, self._inode = descriptor, status.st_ino
        self._map = mmap.mmap(descriptor, _SIZE)

    def read(self) -> int:
        return _COUNT.unpack_from(self._map)[0]

    def revoked_since(self, seen: int) -> tuple[int, frozenset[str] | None]:
        """The count now, and the ids of the keys revoked after ``seen``: None when too many
        to tell (or written over while reading), meaning any key."""
        count = self.read()
        if count - seen > SLOTS or count < seen:
            return count, None
        key_ids = frozenset(self._slot(number) for number in range(seen, count))
        # Read again: a slot rewritten meanwhile by a bump SLOTS later cannot be trusted.
        return count, key_ids if self.read() - seen <= SLOTS else None

    def bump(self, key_id: str) -> None:
        """Record that ``key_id`` was revoked. Never fails the roll it follows (committed
        already): when the file cannot be written, the database's generation counter still
        reaches every process within its poll."""
        try:
            fcntl.flock(self._descriptor, fcntl.LOCK_EX)
            try:
                count = self.read()
                slot = _COUNT.size + (count % SLOTS) * _KEY_ID_BYTES
                self._map[slot : slot + _KEY_ID_BYTES] = key_id.encode().ljust(_KEY_ID_BYTES)
                _COUNT.pack_into(self._map, 0, count + 1)
            finally:
                fcntl.flock(self._descriptor, fcntl.LOCK_UN)
        except (OSError, ValueError) as error:
            log.warning(
                "revocation not shared on this machine; other processes learn of it within "
                "their poll",
                extra={"reason": type(error).__name__},
            )

    def reattach_if_replaced(self) -> bool:
        """Map the file again when it was deleted or replaced (a cleaner of temporary files),
        so that this process and those started later share one counter again."""
        try:
            if os.stat(self._path, follow_symlinks=False).st_ino == self._inode:
                return False
        except FileNotFoundError:
            pass
        try:
            _ensure_private_dir(self._path.parent)
            self._attach()  # the old map stays valid for threads still reading it
        except (OSError, ConfigError) as error:
            log.warning("revocation file not mapped again", extra={"reason": str(error)})
            return False
        return True

    def close(self) -> None:
        os.close(self._descriptor)

    def _slot(self, number: int) -> str:
        start = _COUNT.size + (number % SLOTS) * _KEY_ID_BYTES
        return bytes(self._map[start : start + _KEY_ID_BYTES]).rstrip(b" ").decode()


def _ensure_private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    status = directory.lstat()
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid() or status.st_mode & 0o077:
        raise ConfigError(
            f"BRIDGE_RUNTIME_DIR: {directory} must be a directory of this user that nobody "
            "else can read or write (mode 700)"
        )


def announce(session: Session, key_id: str) -> None:
    """Tell the other machines, when the transaction commits (PostgreSQL only)."""
    if session.get_bind().dialect.name == "postgresql":
        notify = text("SELECT pg_notify(:channel, :key_id)")
        session.execute(notify, {"channel": CHANNEL, "key_id": key_id})


Forget = Callable[[frozenset[str] | None], None]
"""Drops the cached answers of these keys (None: of every key)."""


class RevocationListener:
    """Hears every roll or delete any machine commits, and forgets everything after each
    (re)connection, since notifications sent while away are lost. PostgreSQL only: one more
    connection per serving process, held open (not through a pooler in transaction mode, where
    LISTEN hears nothing)."""

    def __init__(self, database_url: str, forget: Forget) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._forget = forget
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
        failures = 0
        while not self._stopping.is_set():
            try:
                with psycopg.connect(
                    self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
                ) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self._forget(None)
                    if failures:
                        log.info("revocations from other machines are heard again")
                    failures = 0
                    while not self._stopping.is_set():
                        # Wakes at least every second to notice stop().
                        for notice in connection.notifies(timeout=RECONNECT_SECONDS):
                            self._forget(frozenset({notice.payload}) if notice.payload else None)
            except Exception as error:
                if not failures:
                    log.warning(
                        "revocations from other machines are not heard; retrying (the database "
                        "poll still catches them)",
                        extra={"reason": type(error).__name__},
                    )
                failures += 1
                self._stopping.wait(min(RECONNECT_SECONDS * 2**failures, 30))
