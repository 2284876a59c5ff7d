"""Abuse limits, counted with the ``limits`` library (flask-limiter's engine): in Redis when
``BRIDGE_REDIS_URL`` is set, so every worker and machine shares the counts; in this process's
memory otherwise. Each over-limit answer is a 429 with an integer ``Retry-After``.

Failure limits count only failures: a user who gets it right never meets them."""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable

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
    SignInLimited,
    TooManyRequests,
)

REDIS_TIMEOUT_SECONDS = 0.5
log = logging.getLogger(__name__)


class LocalCounts(Storage, MovingWindowSupport):
    """The limits' counts in this process's memory, when there is no Redis: a storage of our
    own, through the interface ``limits`` documents for custom storages.

    Not ``limits``' MemoryStorage: while it is hit, it starts a thread every 10 ms to drop
    expired counts, which costs a busy web worker a few percent of the CPU of a cheap request
    (docs/benchmarks.md). Here a count is checked for expiry when read, and the expired ones
    are dropped from memory once a minute, by the hit that finds the minute past."""

    STORAGE_SCHEME = None  # made by limit_storage, not from a URL

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


def limit_storage(redis_url: str) -> Storage:
    if not redis_url:
        return LocalCounts()
    storage = storage_from_string(
        redis_url,
        wrap_exceptions=True,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )
    assert isinstance(storage, Storage)  # redis:// is a synchronous storage
    return storage


def _counted(count: Callable[[], bool]) -> bool:
    """Whether a request is within its limit. One whose counters cannot be reached (Redis down)
    is let through: serving matters more than counting, and the outage is logged."""
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


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} seconds" if seconds != 1 else "1 second"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes" if minutes != 1 else "1 minute"


class SignInLimits:
    """Failed sign-ins to the web pages, per email and per client address."""

    def __init__(self, storage: Storage) -> None:
        self._per_email = FailureLimit(
            storage,
            "sign_in",
            "10/15 minutes",
            "Too many failed sign-ins for this email. Try again in {wait}, or ask an admin of "
            "your account to check your user.",
            SignInLimited,
        )
        self._per_address = FailureLimit(
            storage,
            "sign_in_address",
            "50/15 minutes",
            "Too many failed sign-ins from your network. Try again in {wait}.",
            SignInAddressLimited,
        )

    def check(self, email: str, address: str) -> None:
        self._per_email.check(email)
        self._per_address.check(address)

    def failed(self, email: str, address: str) -> None:
        self._per_email.failed(email)
        self._per_address.failed(address)


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
        self._per_address.check(address)
        if presented:
            self._per_value.check(presented)

    def refused(self, address: str, presented: str | None) -> None:
        self._per_address.failed(address)
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
