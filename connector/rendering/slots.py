"""How many renders run and wait at once on this machine, and how much of that one account may
take, shared by every web worker of a ``serve``.

Each running or waiting place is a lock file held with ``flock`` for as long as the render runs
or waits: the kernel keeps the count across processes, and a process that dies gives its places
back by itself. An account takes one of its own share files as well as a machine place, so it
never holds more than its share however its requests spread over the workers.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from ..errors import RenderBusy, RenderUnavailable

WAIT_SECONDS = 10.0
_POLL_SECONDS = 0.02


class RenderSlots:
    """At most ``capacity`` renders at once and ``queue`` more waiting (each for up to
    ``wait_seconds``), one account holding at most half of each; past that, ``RenderBusy``."""

    def __init__(
        self, directory: Path, capacity: int, queue: int, wait_seconds: float = WAIT_SECONDS
    ) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._directory = directory
        self._capacity = capacity
        self._queue = queue
        self._wait_seconds = wait_seconds

    @property
    def account_share(self) -> int:
        """Half the slots, rounded down; at least one."""
        return max(1, self._capacity // 2)

    @contextmanager
    def held(self, account_id: str) -> Iterator[None]:
        account = hashlib.sha256(account_id.encode()).hexdigest()[:24]
        with ExitStack() as running:
            if not self._take_running(account, running):
                self._wait_for_running(account, running)
            yield

    def _take_running(self, account: str, stack: ExitStack) -> bool:
        with ExitStack() as attempt:
            if self._take(attempt, f"{account}-run", self.account_share) and self._take(
                attempt, "run", self._capacity
            ):
                stack.enter_context(attempt.pop_all())
                return True
        return False

    def _wait_for_running(self, account: str, running: ExitStack) -> None:
        with ExitStack() as waiting:
            if not (
                self._take(waiting, f"{account}-wait", max(1, self._queue // 2))
                and self._take(waiting, "wait", self._queue)
            ):
                raise _busy()
            deadline = time.monotonic() + self._wait_seconds
            while not self._take_running(account, running):
                if time.monotonic() > deadline:
                    raise _busy()
                time.sleep(_POLL_SECONDS)

    def _take(self, stack: ExitStack, kind: str, places: int) -> bool:
        """Lock the first free one of ``places`` files named for ``kind``; on the stack's exit it
        is given back."""
        for place in range(places):
            descriptor = self._open(f"{kind}-{place}")
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                continue
            stack.callback(os.close, descriptor)
            return True
        return False

    def _open(self, name: str) -> int:
        path = self._directory / name
        try:
            try:
                return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            except FileNotFoundError:  # the directory was removed (a temporary files cleaner)
                self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise RenderUnavailable(
                f"The render slots cannot be used ({error.strerror}). Retry in a few seconds; "
                "the service's operator should check its temporary directory."
            ) from None


def _busy() -> RenderBusy:
    return RenderBusy(
        "Every rendering slot of this server is busy (or your account is using its share of "
        "them). Retry in a few seconds."
    )
