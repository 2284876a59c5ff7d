"""Abuse limits on failed attempts, counted with the ``limits`` library (flask-limiter's engine):
in Redis when ``BRIDGE_REDIS_URL`` is set, so every worker and machine shares the counts; in this
process's memory otherwise.

Only failures count: a user who signs in right the first time never meets a limit, however often
they sign in."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from .errors import TooManyRequests


def limit_storage(redis_url: str) -> Storage:
    storage = storage_from_string(redis_url or "memory://")
    assert isinstance(storage, Storage)  # redis:// and memory:// are synchronous storages
    return storage


class FailureLimit:
    """At most ``rate`` failures (e.g. "10/15 minutes") per identity, over a moving window."""

    def __init__(self, storage: Storage, name: str, rate: str, message: str) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._name = name
        self._item: RateLimitItem = parse(rate)
        # "{wait}" becomes "3 minutes", "1 minute", "40 seconds".
        self._message = message

    def check(self, identity: str) -> None:
        """Raise :class:`TooManyRequests` when ``identity`` has used up its failures."""
        if self._limiter.test(self._item, self._name, identity):
            return
        reset_at = self._limiter.get_window_stats(self._item, self._name, identity).reset_time
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise TooManyRequests(
            self._message.format(wait=_duration(retry_after)),
            retry_after=retry_after,
            code=f"{self._name}_limited",
        )

    def failed(self, identity: str) -> None:
        self._limiter.hit(self._item, self._name, identity)


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} seconds" if seconds != 1 else "1 second"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes" if minutes != 1 else "1 minute"
