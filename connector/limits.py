"""Abuse limits, counted with the ``limits`` library (flask-limiter's engine). Each over-limit
answer is a 429 with an integer ``Retry-After``. Failure limits count only failures: a user who
gets it right never meets them.

Where the counts live:

- With ``BRIDGE_REDIS_URL``, in Redis: every worker and machine shares them. While Redis does
  not answer, each limit counts in its local store below instead (as flask-limiter's in-memory
  fallback does), and Redis is tried again every few seconds (:class:`RedisLink`).
- Without it, the limits on API requests count in each process's memory (:class:`LocalCounts`:
  a request must not wait on a file), and the sign-in limits in a SQLite file in
  ``BRIDGE_RUNTIME_DIR`` (:class:`MachineCounts`), shared by every process of this machine: a
  worker of its own must not give a guesser another 10 tries. A file rather than the database:
  the database has no table that fits, and a sign-in is rare enough for a file write; the
  runtime directory is already where this machine's processes share state (the revocations).

What a limit stores for client text (an email, an address, a key value) is its SHA-256."""

from __future__ import annotations

import bisect
import hashlib
import ipaddress
import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MovingWindowSupport, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from .auth import Principal
from .errors import (
    FailedAuthAddressLimited,
    FailedAuthKeyLimited,
    RateLimited,
    SignInAddressLimited,
    SignInEmailLimited,
    SignInLimited,
    TooManyRequests,
)

REDIS_TIMEOUT_SECONDS = 0.5
REDIS_RETRY_SECONDS = 5.0
T = TypeVar("T")
log = logging.getLogger(__name__)


class LocalCounts(Storage, MovingWindowSupport):
    """The API limits' counts in this process's memory, without Redis or while it is away: a
    storage of our own, through the interface ``limits`` documents for custom storages.

    Not ``limits``' MemoryStorage: while it is hit, it starts a thread every 10 ms to drop
    expired counts, which costs a busy web worker a few percent of the CPU of a cheap request
    (docs/benchmarks.md). Here a count is checked for expiry when read, and the expired ones
    are dropped from memory once a minute, by the hit that finds the minute past."""

    STORAGE_SCHEME = None  # made by counted_in, not from a URL

    def __init__(self, sweep_seconds: float = 60.0) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}  # key: (count, when it expires)
        # Moving windows, key: when each hit leaves the window, oldest first.
        self._hits: dict[str, list[float]] = {}
        self._sweep_seconds = sweep_seconds
        self._next_sweep = time.time() + sweep_seconds

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return ()  # no connection to lose: no error to wrap as limits' StorageError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            self._sweep(now)
            count, expires = self._counts.get(key, (0, now))
            if expires <= now:
                count, expires = 0, now + expiry
            self._counts[key] = (count + amount, expires)
            return count + amount

    def get(self, key: str) -> int:
        count, expires = self._counts.get(key, (0, 0.0))
        return count if expires > time.time() else 0

    def get_expiry(self, key: str) -> float:
        return max(self._counts.get(key, (0, 0.0))[1], time.time())

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        now = time.time()
        with self._lock:
            self._sweep(now)
            hits = self._in_window(key, now)
            if len(hits) + amount > limit:
                return False
            self._hits[key] = hits + [now + expiry] * amount
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        hits = self._in_window(key, now)
        return (hits[0] - expiry if hits else now), len(hits)

    def clear(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)
            self._hits.pop(key, None)

    def reset(self) -> int:
        with self._lock:
            stored = len(self._counts) + len(self._hits)
            self._counts.clear()
            self._hits.clear()
            return stored

    def check(self) -> bool:
        return True

    def _in_window(self, key: str, now: float) -> list[float]:
        hits = self._hits.get(key, [])
        return hits[bisect.bisect_right(hits, now) :]

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._sweep_seconds
        self._counts = {key: count for key, count in self._counts.items() if count[1] > now}
        self._hits = {key: hits for key, hits in self._hits.items() if hits and hits[-1] > now}


class MachineCounts(Storage, MovingWindowSupport):
    """Counts shared by every process of this machine: a SQLite file in ``runtime_dir``, each
    count changed in one transaction (``BEGIN IMMEDIATE``), with a connection of its own (safe
    across threads and forks). Expired counts are dropped by the next change."""

    STORAGE_SCHEME = None  # made by counted_in, not from a URL

    def __init__(self, runtime_dir: Path) -> None:
        super().__init__(wrap_exceptions=True)  # a broken file lets requests through, logged
        self._path = runtime_dir / "limits.sqlite3"
        try:
            self._create()
        except sqlite3.DatabaseError:  # not a database (any more): the counts are worth nothing
            log.warning("the sign-in limits' file was unreadable; it starts anew")
            self._path.unlink()
            self._create()

    def _create(self) -> None:
        # The service's user's alone, as everything in the data directory, and never a link.
        descriptor = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        os.fchmod(descriptor, 0o600)
        os.close(descriptor)
        self._create_tables()

    def _create_tables(self) -> None:
        with closing(self._connect()) as db:
            db.executescript(
                "CREATE TABLE IF NOT EXISTS counts"
                " (key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires REAL NOT NULL);"
                # Moving windows: a row per hit, with when it leaves the window.
                "CREATE TABLE IF NOT EXISTS hits (key TEXT NOT NULL, leaves REAL NOT NULL);"
                "CREATE INDEX IF NOT EXISTS hits_of_key ON hits (key, leaves);"
                "CREATE INDEX IF NOT EXISTS hits_by_time ON hits (leaves);"
            )

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return (sqlite3.Error,)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=5.0, isolation_level=None)
        # Counts lost in a power cut cost nothing worth a disk flush per sign-in.
        db.execute("PRAGMA synchronous = OFF")
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as db:  # closed uncommitted: rolled back
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._transaction() as db:
            db.execute("DELETE FROM counts WHERE expires <= ?", (now,))
            row = db.execute("SELECT count, expires FROM counts WHERE key = ?", (key,)).fetchone()
            count, expires = row or (0, now + expiry)
            db.execute("REPLACE INTO counts VALUES (?, ?, ?)", (key, count + amount, expires))
            return int(count) + amount

    def get(self, key: str) -> int:
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT count FROM counts WHERE key = ? AND expires > ?", (key, time.time())
            ).fetchone()
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        with closing(self._connect()) as db:
            row = db.execute("SELECT expires FROM counts WHERE key = ?", (key,)).fetchone()
        return max(float(row[0]) if row else 0.0, time.time())

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        now = time.time()
        with self._transaction() as db:
            db.execute("DELETE FROM hits WHERE leaves <= ?", (now,))
            (count,) = db.execute("SELECT count(*) FROM hits WHERE key = ?", (key,)).fetchone()
            if count + amount > limit:
                return False
            db.executemany("INSERT INTO hits VALUES (?, ?)", [(key, now + expiry)] * amount)
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        with closing(self._connect()) as db:
            oldest, count = db.execute(
                "SELECT min(leaves), count(*) FROM hits WHERE key = ? AND leaves > ?", (key, now)
            ).fetchone()
        return (oldest - expiry if count else now), int(count)

    def clear(self, key: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM counts WHERE key = ?", (key,))
            db.execute("DELETE FROM hits WHERE key = ?", (key,))

    def reset(self) -> int:
        with self._transaction() as db:
            stored = (
                db.execute("DELETE FROM counts").rowcount + db.execute("DELETE FROM hits").rowcount
            )
            return int(stored)

    def check(self) -> bool:
        return True


class RedisLink:
    """The Redis that the limits share, and whether it answers. After a failure the limits count
    locally, and one request every ``retry_seconds`` tries Redis again (the others go on
    locally, without waiting on it); the first that Redis answers brings every limit back."""

    def __init__(self, url: str, retry_seconds: float = REDIS_RETRY_SECONDS) -> None:
        storage = storage_from_string(
            url,
            wrap_exceptions=True,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        assert isinstance(storage, Storage)  # redis:// is a synchronous storage
        self.storage: Any = storage  # a RedisStorage: moving windows too
        self._retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._away = False
        self._retry_at = 0.0

    @property
    def answers(self) -> bool:
        """Whether Redis answered the last time it was asked."""
        return not self._away

    def check(self) -> bool:
        """Ask Redis now (for ``/readyz`` and ``/metrics``); whether it answers."""
        if self.storage.check():
            self._answered()
        else:
            self._lost("no answer to PING")
        return self.answers

    def use(self, count: Callable[[Any], T], local: Storage) -> T:
        """``count`` done in Redis, or in ``local`` while Redis is away."""
        if self._may_try():
            try:
                result = count(self.storage)
            except StorageError as error:
                self._lost(type(error.storage_error).__name__)
            else:
                self._answered()
                return result
        return count(local)

    def _may_try(self) -> bool:
        if not self._away:
            return True
        with self._lock:
            now = time.time()
            if now < self._retry_at:
                return False
            self._retry_at = now + self._retry_seconds
            return True

    def _lost(self, why: str) -> None:
        with self._lock:
            if not self._away:
                log.warning(
                    "Redis (BRIDGE_REDIS_URL) does not answer (%s): the abuse limits count in "
                    "this process until it does",
                    why,
                )
            self._away = True
            self._retry_at = time.time() + self._retry_seconds

    def _answered(self) -> None:
        if self._away:
            with self._lock:
                if self._away:
                    log.warning("Redis (BRIDGE_REDIS_URL) answers again: the abuse limits use it")
                self._away = False


class RedisOrLocal(Storage, MovingWindowSupport):
    """Counts in Redis, or in ``local`` while Redis is away (:class:`RedisLink`)."""

    STORAGE_SCHEME = None  # made by counted_in, not from a URL

    def __init__(self, redis: RedisLink, local: Storage) -> None:
        super().__init__()
        self._redis = redis
        self._local = local

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return ()  # each storage wraps its own

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self._redis.use(lambda counts: counts.incr(key, expiry, amount), self._local)

    def get(self, key: str) -> int:
        return self._redis.use(lambda counts: counts.get(key), self._local)

    def get_expiry(self, key: str) -> float:
        return self._redis.use(lambda counts: counts.get_expiry(key), self._local)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return self._redis.use(
            lambda counts: counts.acquire_entry(key, limit, expiry, amount), self._local
        )

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        return self._redis.use(
            lambda counts: counts.get_moving_window(key, limit, expiry), self._local
        )

    def clear(self, key: str) -> None:
        self._redis.use(lambda counts: counts.clear(key), self._local)

    def reset(self) -> int | None:
        return self._redis.use(lambda counts: counts.reset(), self._local)

    def check(self) -> bool:
        return True  # counting goes on either way; RedisLink.check says whether Redis answers


def counted_in(redis: RedisLink | None, local: Storage) -> Storage:
    """Where a limit counts: Redis when there is one, with ``local`` while it is away."""
    return RedisOrLocal(redis, local) if redis is not None else local


def _counted(count: Callable[[], bool]) -> bool:
    """Whether a request is within its limit. One whose counters cannot be reached (a broken
    file) is let through: serving matters more than counting, and the failure is logged."""
    try:
        return count()
    except StorageError as error:
        log.warning("abuse limits are not counted: %s", type(error.storage_error).__name__)
        return True


def _over_limit(
    limiter: MovingWindowRateLimiter | FixedWindowRateLimiter,
    item: RateLimitItem,
    identifiers: tuple[str, ...],
    message: Callable[[str], str],
    error: type[TooManyRequests],
) -> TooManyRequests:
    try:
        reset_at = limiter.get_window_stats(item, *identifiers).reset_time
    except StorageError:
        reset_at = time.time() + item.get_expiry()
    retry_after = max(1, math.ceil(reset_at - time.time()))
    return error(message(_duration(retry_after)), details={"retry_after": retry_after})


def _stored_identity(*parts: str) -> str:
    """What a limit stores for an identity made of client text (an email, an address, a key
    value): its SHA-256 (hex), 64 characters however long the text, and never the text."""
    return hashlib.sha256(json.dumps(parts).encode("utf-8", "surrogatepass")).hexdigest()


class FailureLimit:
    """At most ``rate`` failures (e.g. "10/15 minutes") per identity, over a moving window.
    An identity is one or more strings from the client, stored hashed."""

    def __init__(
        self,
        storage: Storage,
        name: str,
        rate: str,
        message: str,
        error: type[TooManyRequests],
    ) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._name = name
        self._error = error
        self._item: RateLimitItem = parse(rate)
        # "{wait}" becomes "3 minutes", "1 minute", "40 seconds".
        self._message = message

    def check(self, *identity: str) -> None:
        """Raise :class:`TooManyRequests` when ``identity`` has used up its failures."""
        stored = _stored_identity(*identity)
        if not _counted(lambda: self._limiter.test(self._item, self._name, stored)):
            raise _over_limit(
                self._limiter,
                self._item,
                (self._name, stored),
                lambda wait: self._message.format(wait=wait),
                self._error,
            )

    def failed(self, *identity: str) -> None:
        stored = _stored_identity(*identity)
        _counted(lambda: self._limiter.hit(self._item, self._name, stored))


def network_of(address: str) -> str:
    """What an address limit counts: an IPv4 address, or the /64 an IPv6 one is in (one
    subscriber's network: its owner can use any of its 2^64 addresses)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} seconds" if seconds != 1 else "1 second"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes" if minutes != 1 else "1 minute"


class SignInLimits:
    """Failed sign-ins to the web pages, counted so that a guesser cannot lock a user out:

    - per (email, address), 10 in 15 minutes: guessing one user's password from one place;
    - per address, 50: one place guessing many users;
    - per email, 200: a ceiling on guessing one user's password from many places, which one
      address (held at 50) cannot reach alone. Until then, the real user signs in from their own
      address while another address is refused for that email."""

    def __init__(self, storage: Storage) -> None:
        self._per_email_and_address = FailureLimit(
            storage,
            "sign_in",
            "10/15 minutes",
            "Too many failed sign-ins for this email from your network. Try again in {wait}, or "
            "ask an admin of your account to check your user.",
            SignInLimited,
        )
        self._per_address = FailureLimit(
            storage,
            "sign_in_address",
            "50/15 minutes",
            "Too many failed sign-ins from your network. Try again in {wait}.",
            SignInAddressLimited,
        )
        self._per_email = FailureLimit(
            storage,
            "sign_in_email",
            "200/15 minutes",
            "Too many failed sign-ins for this email, from many networks. Try again in {wait}, "
            "and ask an admin of your account to check your user.",
            SignInEmailLimited,
        )

    def check(self, email: str, address: str) -> None:
        network = network_of(address)
        self._per_email_and_address.check(email, network)
        self._per_address.check(network)
        self._per_email.check(email)

    def failed(self, email: str, address: str) -> None:
        network = network_of(address)
        self._per_email_and_address.failed(email, network)
        self._per_address.failed(network)
        self._per_email.failed(email)


class ApiLimits:
    """The limits on requests made with API keys, on every surface (``/v1``, Zapier, n8n):

    - refused requests per client address and per presented value: checked before the key is
      even looked up, so a flood of bad keys costs no database work once over the limit;
    - requests per key (all its values together), counted after it is accepted.

    A client's automatic repeat of a refused request (n8n's) is not counted again."""

    def __init__(
        self, storage: Storage, *, per_key: str, failures_per_address: str, failures_per_value: str
    ) -> None:
        self._counter = FixedWindowRateLimiter(storage)
        self._per_key = parse(per_key)
        self._per_address = FailureLimit(
            storage,
            "failed_auth_address",
            failures_per_address,
            "Too many requests with refused API keys from your address. Retry in {wait}, and "
            "first update the integration with a valid key from the API keys page.",
            FailedAuthAddressLimited,
        )
        self._per_value = FailureLimit(
            storage,
            "failed_auth_key",
            failures_per_value,
            "Too many requests with this refused API key. Retry in {wait}, and first update the "
            "integration with a valid key from the API keys page.",
            FailedAuthKeyLimited,
        )

    def check_refusals(self, address: str, presented: str | None) -> None:
        self._per_address.check(network_of(address))
        if presented:
            self._per_value.check(presented)

    def refused(self, address: str, presented: str | None) -> None:
        self._per_address.failed(network_of(address))
        if presented:
            self._per_value.failed(presented)

    def accepted(self, principal: Principal) -> None:
        if not _counted(lambda: self._counter.hit(self._per_key, "key", principal.key_id)):
            raise _over_limit(
                self._counter,
                self._per_key,
                ("key", principal.key_id),
                lambda wait: (
                    f"The API key {principal.key_name!r} made more than {self._per_key.amount} "
                    f"requests in {_period(self._per_key)}. Retry in {wait}, and spread the "
                    "integration's requests out."
                ),
                RateLimited,
            )


def _period(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return f"{item.multiples} {unit}s" if item.multiples != 1 else f"1 {unit}"
