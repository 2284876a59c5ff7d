"""The abuse limits' own storages (in this process's memory; in a file shared by this machine's
processes): count right in both kinds of window, let a client through again when the window it
was told to wait for has passed, and keep no expired counts. Whatever the storage, client text
is stored hashed. With Redis, counting goes on locally while it is away and goes back to it."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
from redis import Redis

from connector.errors import SignInEmailLimited
from connector.limits import (
    ApiLimits,
    LocalCounts,
    MachineCounts,
    RedisLink,
    RedisOrLocal,
    SignInLimits,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
CLOSED_PORT_URL = "redis://127.0.0.1:9/0"  # the discard port: nothing listens


@pytest.fixture(params=["memory", "machine"])
def storage(request, tmp_path: Path) -> LocalCounts | MachineCounts:
    return LocalCounts() if request.param == "memory" else MachineCounts(tmp_path)


def test_counts_are_right_in_both_kinds_of_window(storage) -> None:
    three_a_minute = parse("3/minute")
    for limiter in (FixedWindowRateLimiter(storage), MovingWindowRateLimiter(storage)):
        assert [limiter.hit(three_a_minute, "key", "a") for _ in range(4)] == [True] * 3 + [False]
        assert limiter.hit(three_a_minute, "key", "b")  # another identity counts apart
        assert limiter.get_window_stats(three_a_minute, "key", "a").remaining == 0
        assert limiter.get_window_stats(three_a_minute, "key", "b").remaining == 2


def test_a_client_that_waits_until_the_reset_it_was_told_gets_through(storage) -> None:
    # The reset time is what a 429's Retry-After is made from.
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


def test_machine_counts_are_one_count_for_every_process(tmp_path: Path) -> None:
    # Each MachineCounts opens the file anew for every count, as another process would.
    first, second = MachineCounts(tmp_path), MachineCounts(tmp_path)
    limiters = [MovingWindowRateLimiter(storage) for storage in (first, second)]
    three = parse("3/minute")

    assert [limiter.hit(three, "key", "a") for limiter in limiters * 2] == [True] * 3 + [False]


def test_one_address_cannot_lock_a_user_out_but_many_meet_a_ceiling(tmp_path: Path) -> None:
    limits = SignInLimits(MachineCounts(tmp_path))
    email, users_address = "ada@acme.example", "198.51.100.7"
    guessers = [f"203.0.113.{n}" for n in range(1, 5)]
    for address in guessers:
        for _ in range(50 if address != guessers[-1] else 49):
            limits.failed(email, address)

    limits.check(email, users_address)  # 199 failures from four addresses: the user signs in
    limits.failed(email, guessers[-1])
    with pytest.raises(SignInEmailLimited) as limited:
        limits.check(email, users_address)

    assert limited.value.message.startswith("Too many failed sign-ins for this email, from many")


def test_while_redis_is_away_limits_count_in_memory_and_it_is_reported_once(caplog) -> None:
    link = RedisLink(CLOSED_PORT_URL)
    limiter = FixedWindowRateLimiter(RedisOrLocal(link, LocalCounts()))
    three = parse("3/minute")

    assert [limiter.hit(three, "key", "a") for _ in range(4)] == [True] * 3 + [False]
    assert not link.answers and not link.check()
    outage = [r for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(outage) == 1  # not once a request
    assert "ConnectionError" in outage[0].getMessage()


def test_the_limits_go_back_to_redis_when_it_answers(redis_server, caplog) -> None:
    link = RedisLink(redis_server.url, retry_seconds=0.2)
    limiter = FixedWindowRateLimiter(RedisOrLocal(link, LocalCounts()))
    three = parse("3/minute")
    assert [limiter.hit(three, "key", "a") for _ in range(4)] == [True] * 3 + [False]  # local

    redis_server.start()
    time.sleep(0.3)  # past the time to try Redis again

    assert limiter.hit(three, "key", "a")  # counted in Redis, which had counted nothing
    assert link.answers
    assert "Redis (BRIDGE_REDIS_URL) answers again" in caplog.text
    redis = Redis.from_url(redis_server.url)
    assert [key.decode() for key in redis.scan_iter()] == ["LIMITS:LIMITER/key/a/3/1/minute"]
    redis.close()


def test_the_machines_count_file_is_private_and_a_corrupt_one_starts_anew(tmp_path) -> None:
    (tmp_path / "limits.sqlite3").write_bytes(b"garbage, not a database")

    counts = MachineCounts(tmp_path)
    counts.incr("sign_in/x", 60)

    assert counts.get("sign_in/x") == 1
    assert (tmp_path / "limits.sqlite3").stat().st_mode & 0o777 == 0o600
