"""Which platform made a request, from its User-Agent, and how it repeats refused requests."""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Hashable

REPEAT_WITHIN_SECONDS = 5.0
MAX_REMEMBERED = 10_000


class Client(enum.StrEnum):
    ZAPIER = "zapier"
    N8N = "n8n"
    OTHER = "other"


# n8n repeats every request made with a credential once, at once, when it is answered 401.
RETRIES_REFUSED_ONCE = frozenset({Client.N8N})


def classify(user_agent: str | None) -> Client:
    """Zapier's runtime sends ``Zapier``; n8n sends ``n8n`` on credential-based requests."""
    agent = (user_agent or "").lower()
    if "zapier" in agent:
        return Client.ZAPIER
    if "n8n" in agent:
        return Client.N8N
    return Client.OTHER


class RefusalRepeats:
    """Tells a client's automatic repeat of a refused request from a new attempt, so that one
    attempt is counted once: in failure reports, and by abuse limits.

    A refusal is remembered by what identifies the request (the key's fingerprint, the path);
    the next identical refusal from the same client within ``REPEAT_WITHIN_SECONDS`` is its
    repeat, and the one after that is a new attempt again."""

    def __init__(self, window: float = REPEAT_WITHIN_SECONDS) -> None:
        self._window = window
        self._lock = threading.Lock()
        self._first_seen: dict[Hashable, float] = {}

    def expects(self, client: Client, request: Hashable) -> bool:
        """Whether the next identical refusal would be a repeat (without counting it as one)."""
        if client not in RETRIES_REFUSED_ONCE:
            return False
        with self._lock:
            first_seen = self._first_seen.get((client, request))
        return first_seen is not None and time.monotonic() - first_seen <= self._window

    def is_repeat(self, client: Client, request: Hashable) -> bool:
        if client not in RETRIES_REFUSED_ONCE:
            return False
        now = time.monotonic()
        identity = (client, request)
        with self._lock:
            first_seen = self._first_seen.pop(identity, None)
            if first_seen is not None and now - first_seen <= self._window:
                return True
            if len(self._first_seen) >= MAX_REMEMBERED:
                # A flood of distinct refusals: forget the oldest half rather than grow.
                for stale in list(self._first_seen)[: MAX_REMEMBERED // 2]:
                    del self._first_seen[stale]
            self._first_seen[identity] = now
            return False
