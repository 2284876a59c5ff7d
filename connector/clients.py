"""Which platform made a request, from its User-Agent, and how it repeats refused requests."""

from __future__ import annotations

import enum
import hashlib
import logging
import threading
from datetime import timedelta
from typing import Any

from cachetools import TTLCache
from sqlalchemy import CursorResult, delete
from sqlalchemy.exc import SQLAlchemyError

from .clock import Clock
from .db import Database
from .models import RefusalRepeat

REPEAT_WITHIN_SECONDS = 5
log = logging.getLogger(__name__)


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
    repeat, and the one after that is a new attempt again. Refusals of a known old value
    (``shared``: they go into failure reports) are remembered in the database, so that a repeat
    answered by another worker or machine is still known; any other refusal (a value that is not
    a key of ours: anyone can send those by the thousand) only in this process's memory, as is
    every answer to :meth:`expects` (asked on the abuse limits' path, which must stay free of
    queries). When the database cannot be reached, every refusal counts."""

    def __init__(self, db: Database, clock: Clock, window: int = REPEAT_WITHIN_SECONDS) -> None:
        self._db = db
        self._clock = clock
        self._window = timedelta(seconds=window)
        self._recent: TTLCache[str, bool] = TTLCache(maxsize=10_000, ttl=window)
        self._lock = threading.Lock()

    def expects(self, client: Client, key_fingerprint: str, path: str) -> bool:
        """Whether the next identical refusal would be a repeat (without counting it as one)."""
        if client not in RETRIES_REFUSED_ONCE:
            return False
        with self._lock:
            return _remembered_as(client, key_fingerprint, path) in self._recent

    def is_repeat(
        self, client: Client, key_fingerprint: str, path: str, *, shared: bool = False
    ) -> bool:
        if client not in RETRIES_REFUSED_ONCE:
            return False
        remembered = _remembered_as(client, key_fingerprint, path)
        with self._lock:
            repeat = self._recent.pop(remembered, False)
            if not repeat:
                self._recent[remembered] = True
        if shared:
            repeat = self._shared_is_repeat(remembered)
        return repeat

    def _shared_is_repeat(self, remembered: str) -> bool:
        now = self._clock.now()
        try:
            with self._db.transaction() as session:
                taken: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                    delete(RefusalRepeat).where(
                        RefusalRepeat.request == remembered, RefusalRepeat.remembered_until > now
                    )
                )
                if taken.rowcount == 1:
                    return True
                session.execute(delete(RefusalRepeat).where(RefusalRepeat.remembered_until <= now))
                session.add(RefusalRepeat(request=remembered, remembered_until=now + self._window))
        except SQLAlchemyError as error:
            log.warning("refusal repeats are not told apart: %s", type(error).__name__)
        return False


def _remembered_as(client: Client, key_fingerprint: str, path: str) -> str:
    # Any path a client sends, at a fixed length.
    return hashlib.sha256(f"{client.value} {key_fingerprint} {path}".encode()).hexdigest()
