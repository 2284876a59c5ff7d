"""The abuse limits' own in-process storage (no Redis): counts right in both kinds of window,
lets a client through again when the window it was told to wait for has passed, and does not
keep expired counts in memory. Whatever the storage, client text is stored hashed."""

from __future__ import annotations

import secrets
import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
from redis import Redis

from connector.limits import ApiLimits, LocalCounts, SignInLimits, limit_storage

REDIS_URL = "redis://127.0.0.1:6379/0"


def test_without_redis_the_limits_count_in_this_process() -> None:
    assert isinstance(limit_storage(""), LocalCounts)


def test_counts_are_right_in_both_kinds_of_window() -> None:
    storage = LocalCounts()
    three_a_minute = parse("3/minute")
    for limiter in (FixedWindowRateLimiter(storage), MovingWindowRateLimiter(storage)):
        assert [limiter.hit(three_a_minute, "key", "a") for _ in range(4)] == [True] * 3 + [False]
        assert limiter.hit(three_a_minute, "key", "b")  # another identity counts apart
        assert limiter.get_window_stats(three_a_minute, "key", "a").remaining == 0
        assert limiter.get_window_stats(three_a_minute, "key", "b").remaining == 2


def test_a_client_that_waits_until_the_reset_it_was_told_gets_through() -> None:
    # The reset time is what a 429's Retry-After is made from.
    storage = LocalCounts()
    two_a_second = parse("2/second")
    limiters = (FixedWindowRateLimiter(storage), MovingWindowRateLimiter(storage))
    resets = []
    for limiter in limiters:
        assert [limiter.hit(two_a_second, "key", "a") for _ in range(3)] == [True, True, False]
        resets.append(limiter.get_window_stats(two_a_second, "key", "a").reset_time)

    time.sleep(max(0.0, max(resets) - time.time()) + 0.05)

    for limiter in limiters:
        assert limiter.hit(two_a_second, "key", "a")


def test_expired_counts_do_not_stay_in_memory() -> None:
    storage = LocalCounts(sweep_seconds=0)  # every hit sweeps
    one_a_second = parse("1/second")
    fixed, moving = FixedWindowRateLimiter(storage), MovingWindowRateLimiter(storage)
    for identity in ("a", "b", "c"):
        fixed.hit(one_a_second, "key", identity)
        moving.hit(one_a_second, "key", identity)
    reset = moving.get_window_stats(one_a_second, "key", "c").reset_time

    time.sleep(max(0.0, reset - time.time()) + 0.05)
    fixed.hit(one_a_second, "key", "d")

    assert storage.reset() == 1  # what it held: the count of "d", and nothing expired


def test_client_text_is_stored_hashed_and_bounded() -> None:
    """A 100 KB email, address or key value is stored as a 64-character hash, never as itself."""
    prefix = f"test-limits-{secrets.token_hex(8)}"  # other processes share this Redis
    storage = storage_from_string(REDIS_URL, key_prefix=prefix)
    huge = "a" * 100_000
    SignInLimits(storage).failed(f"{huge}@acme.example", huge)
    limits = ApiLimits(
        storage, per_key="1/minute", failures_per_address="1/minute", failures_per_value="1/minute"
    )
    limits.refused(huge, "tt_live_" + huge)

    redis = Redis.from_url(REDIS_URL)
    stored = [key.decode() for key in redis.scan_iter(f"{prefix}:*")]
    try:
        assert stored  # something was counted
        assert all(len(key) < 200 and huge[:64] not in key for key in stored)
    finally:
        if stored:
            redis.delete(*stored)
        redis.close()
