"""The in-process storage of the abuse limits (no Redis): counts right, memory freed, and no
thread started per hit."""

from __future__ import annotations

import gc
import threading
import time
from unittest import mock

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from connector.limits import SweptMemoryStorage, limit_storage


def test_without_redis_the_limits_count_in_this_process() -> None:
    assert isinstance(limit_storage(""), SweptMemoryStorage)


def test_counts_are_right_in_both_kinds_of_window() -> None:
    storage = SweptMemoryStorage()
    three_a_minute = parse("3/minute")
    fixed, moving = FixedWindowRateLimiter(storage), MovingWindowRateLimiter(storage)
    for limiter in (fixed, moving):
        assert [limiter.hit(three_a_minute, "key", "a") for _ in range(4)] == [True] * 3 + [False]
        assert limiter.hit(three_a_minute, "key", "b")  # another identity counts apart


def test_hits_start_no_expiry_thread_where_limits_own_storage_would() -> None:
    # limits' MemoryStorage restarts a timer thread whenever the last one has ended; with the
    # timer's start stubbed, none ever runs, so that would be a start on every hit.
    item = parse("1000/minute")
    for storage, expected_starts in ((MemoryStorage(), 100), (SweptMemoryStorage(), 0)):
        limiter = FixedWindowRateLimiter(storage)
        storage.timer.join()  # the one both start when made
        with mock.patch.object(threading.Timer, "start") as start:
            for _ in range(100):
                limiter.hit(item, "key", "a")
        assert start.call_count == expected_starts


def test_expired_counts_are_swept_from_memory() -> None:
    storage = SweptMemoryStorage(sweep_seconds=0.05)
    FixedWindowRateLimiter(storage).hit(parse("5/second"), "key", "a")
    MovingWindowRateLimiter(storage).hit(parse("5/second"), "key", "b")
    assert storage.storage and storage.events
    deadline = time.monotonic() + 5
    while (storage.storage or any(storage.events.values())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not storage.storage
    assert not any(storage.events.values())  # limits keeps the emptied lists' keys


def test_a_storage_no_longer_used_ends_its_sweeper() -> None:
    before = set(threading.enumerate())
    SweptMemoryStorage(sweep_seconds=0.01)
    (sweeper,) = (t for t in set(threading.enumerate()) - before if t.name == "limits-sweeper")
    deadline = time.monotonic() + 5
    while sweeper.is_alive() and time.monotonic() < deadline:
        gc.collect()  # limits' storages hold themselves in a reference cycle
        time.sleep(0.02)
    assert not sweeper.is_alive(), "the sweeper outlived its storage"
