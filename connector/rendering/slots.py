"""PDF conversions take a gunicorn thread for up to their time limit. Bounding how many run and
wait at once in a process keeps threads free for the cheap routes (auth tests, polling)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import BridgeError

WAIT_SECONDS = 30.0


class RenderBusy(BridgeError):
    # 429 rather than 503: Zapier retries a 429 after its Retry-After by itself (ThrottledError),
    # and n8n says "too many requests"; this is load being shed by design, not an outage.
    status = 429
    code = "render_busy"
    retry_after = 5


class PdfSlots:
    """At most ``concurrency`` conversions at once, and ``queue`` more waiting for a slot (for
    up to ``WAIT_SECONDS``); any more get a 429 with ``Retry-After`` at once."""

    def __init__(self, concurrency: int, queue: int, wait_seconds: float = WAIT_SECONDS) -> None:
        self._slots = threading.BoundedSemaphore(concurrency)
        self._queue = queue
        self._wait_seconds = wait_seconds
        self._waiting = 0
        self._lock = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[None]:
        if not self._slots.acquire(blocking=False):
            self._wait_for_a_slot()
        try:
            yield
        finally:
            self._slots.release()

    def _wait_for_a_slot(self) -> None:
        with self._lock:
            if self._waiting >= self._queue:
                raise _busy()
            self._waiting += 1
        try:
            acquired = self._slots.acquire(timeout=self._wait_seconds)
        finally:
            with self._lock:
                self._waiting -= 1
        if not acquired:
            raise _busy()


def _busy() -> RenderBusy:
    return RenderBusy(
        "Every PDF rendering slot of this server is busy. Retry in a few seconds; TXT documents "
        "are not affected."
    )
