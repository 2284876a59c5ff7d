"""What a leaked API key value sets off, whoever reports it (GitHub's secret scanning, or
``templateto-bridge scan --report``): the key is marked leaked (when, and where it was found),
the ``api_key.leaked`` event and an audit entry are recorded with the mark, and the account's
key policy says whether the key is also rolled at once (``on_leak``).

A leak is known by the SHA-256 of the value alone, as keys are stored: no value reaches here.
Only a value that still works (a key's current value, or an old one in its grace period) is a
leak; a value already rolled away or deleted can do no harm and changes nothing. A value is
marked once: reporting it again records nothing and rolls nothing.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import CursorResult, select, update

from . import audit, keys
from .api_keys import KeyManager
from .audit import Actor, AuditAction, Via
from .clock import Clock, iso
from .db import Database
from .events import EventType, record
from .key_policy import OnLeak, policy_of
from .models import ApiKey, KeyValue

MAX_LEAK_URL = 2_000


class LeakSource(enum.StrEnum):
    GITHUB = "github"
    SCAN = "scan"


class LeakStatus(enum.StrEnum):
    LEAKED = "leaked"
    ALREADY_LEAKED = "already_leaked"
    NOT_WORKING = "not_working"
    NOT_FOUND = "not_found"


class LeakOutcome(BaseModel):
    status: LeakStatus = Field(
        description="leaked: a working value, marked now; already_leaked: marked before, nothing "
        "more done; not_working: a value of the account's key that was rolled away or deleted; "
        "not_found: no key of the account has this value."
    )
    key_id: str | None = None
    key_name: str | None = None
    hint: str | None = Field(default=None, description="The leaked value, shown as tt_live_…abcd.")
    rolled: bool = Field(
        default=False, description="Whether the key was rolled (policy on_leak: roll)."
    )

    @property
    def works(self) -> bool:
        """Whether the reported value works (GitHub's true positive)."""
        return self.status in (LeakStatus.LEAKED, LeakStatus.ALREADY_LEAKED)


def _works(key: ApiKey, value: KeyValue, now: datetime) -> bool:
    if key.deleted_at is not None:
        return False
    return value.retired_at is None or (value.works_until is not None and value.works_until > now)


class LeakResponder:
    def __init__(self, db: Database, clock: Clock, key_manager: KeyManager) -> None:
        self._db = db
        self._clock = clock
        self._keys = key_manager

    def report(
        self,
        digest: str,
        url: str | None,
        source: LeakSource,
        reporter: Actor,
        *,
        account_id: str | None = None,
    ) -> LeakOutcome:
        """Respond to the value whose SHA-256 is ``digest`` having been found at ``url``.
        ``account_id``: only that account's keys are concerned (a reporting admin's); None for
        any (GitHub). ``reporter`` is recorded in the audit log as who marked it, and, through
        the leak response, rolled it."""
        now = self._clock.now()
        url = keys.printable(url, MAX_LEAK_URL) if url else None
        with self._db.transaction() as session:
            query = (
                select(KeyValue, ApiKey)
                .join(ApiKey, KeyValue.key_id == ApiKey.id)
                .where(KeyValue.fingerprint == digest)
            )
            if account_id is not None:
                query = query.where(ApiKey.account_id == account_id)
            row = session.execute(query).one_or_none()
            if row is None:
                return LeakOutcome(status=LeakStatus.NOT_FOUND)
            value, key = row.KeyValue, row.ApiKey
            hint = keys.display_hint(value.last4)
            found = {"key_id": key.id, "key_name": key.name, "hint": hint}
            if not _works(key, value, now):
                return LeakOutcome(status=LeakStatus.NOT_WORKING, **found)
            # Conditional, so that two reports of one value at once mark it (and roll) once;
            # by value, as another value of the key (a grace period's) may have leaked before.
            marked: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                update(KeyValue)
                .where(KeyValue.id == value.id, KeyValue.leaked_at.is_(None))
                .values(leaked_at=now)
            )
            if marked.rowcount != 1:
                return LeakOutcome(status=LeakStatus.ALREADY_LEAKED, **found)
            key.leaked_at, key.leak_url = now, url
            on_leak = policy_of(session, key.account_id).on_leak
            detail = {"name": key.name, "hint": hint, "url": url, "source": source.value}
            record(
                session,
                key.account_id,
                EventType.API_KEY_LEAKED,
                {"id": key.id, **detail, "leaked_at": iso(now), "on_leak": on_leak.value},
                now,
            )
            audit.record(
                session, key.account_id, AuditAction.API_KEY_LEAKED, key.id, reporter, now, detail
            )
            if on_leak is OnLeak.ROLL:
                # In the transaction of the mark: a leak is never marked, and so never again
                # responded to, without the roll its policy asks for.
                responder = Actor(
                    reporter.name, Via.LEAK_RESPONSE, reporter.source_address, reporter.user_agent
                )
                self._keys.roll_within(
                    session, key.account_id, key.id, timedelta(0), actor=responder
                )
        if on_leak is OnLeak.ROLL:
            self._keys.revoked(key.id)
        return LeakOutcome(status=LeakStatus.LEAKED, rolled=on_leak is OnLeak.ROLL, **found)
