"""The audit log: who did what to an account's keys, policy, users and subscriptions, from where.

An entry is written by :func:`record` in the transaction of the action itself, so an action and
its entry commit together or not at all. Entries are never changed; :class:`AuditLog` lists them
newest first and purges those older than the retention period (from the delivery worker's loop).
"""

from __future__ import annotations

import builtins
import enum
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from . import keys
from .clock import Clock
from .db import Database
from .errors import AuditEntryNotFound, excerpt
from .models import AuditEntry, new_id
from .paging import PageQuery, newest_first, next_cursor

log = logging.getLogger(__name__)

PURGE_EVERY = timedelta(hours=1)
PURGE_BATCH = 1_000
MAX_USER_AGENT = 512
MAX_ADDRESS = 64


class AuditAction(enum.StrEnum):
    API_KEY_CREATED = "api_key.created"
    API_KEY_ROLLED = "api_key.rolled"
    API_KEY_DELETED = "api_key.deleted"
    API_KEY_LEAKED = "api_key.leaked"
    API_KEY_ROTATE_BY_SET = "api_key.rotate_by_set"
    KEY_POLICY_CHANGED = "key_policy.changed"
    USER_CREATED = "user.created"
    USER_PASSWORD_SET = "user.password_set"
    SIGN_IN_SUCCEEDED = "user.sign_in_succeeded"
    SIGN_IN_FAILED = "user.sign_in_failed"
    SIGNED_OUT = "user.signed_out"
    HOOK_CREATED = "hook.created"
    HOOK_DELETED = "hook.deleted"
    HOOK_DISABLED = "hook.disabled"


class Via(enum.StrEnum):
    """The surface an action came through."""

    PAGE = "page"
    API = "api"
    CLI = "cli"
    LEAK_RESPONSE = "leak_response"
    DELIVERY = "delivery"  # the delivery worker, on what receivers answered


@dataclass(frozen=True)
class Actor:
    """Who acts: a user's email, an API key's hint (``tt_live_…abcd``, never its value), or the
    operator at the command line; and the request's address and User-Agent when there is one."""

    name: str
    via: Via
    source_address: str | None = None
    user_agent: str | None = None


# Whoever runs the service's code outside a request: the command line, tests, scripts.
OPERATOR = Actor("operator", Via.CLI)
# The service itself, removing or disabling a subscription whose receiver is gone or failing.
SERVICE = Actor("service", Via.DELIVERY)


def record(
    session: Session,
    account_id: str,
    action: AuditAction,
    target: str,
    actor: Actor,
    at: datetime,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an entry to the caller's transaction. ``target``: the key or hook id, the user's email,
    or ``key_policy``. ``detail``: what else a reader needs (a key's name, a roll's grace), never
    a key value."""
    entry = AuditEntry(
        id=_entry_id(),
        account_id=account_id,
        created_at=at,
        action=action.value,
        target=target,
        detail=detail or {},
        actor=actor.name,
        via=actor.via.value,
        source_address=(actor.source_address or None) and actor.source_address[:MAX_ADDRESS],
        # A request's User-Agent is whatever the client put there, a key value included.
        user_agent=(actor.user_agent or None) and keys.printable(actor.user_agent, MAX_USER_AGENT),
    )
    session.add(entry)
    return entry


def _entry_id() -> str:
    """``aud_``, the nanoseconds now in 19 digits, 8 random characters: entries of one instant
    (one transaction's, such as a leak and the roll it caused) list in the order recorded,
    whatever the database's collation, as the newest-first order breaks ties by id."""
    return f"aud_{time.time_ns():019d}{new_id('')[:8]}"


class AuditEntryInfo(BaseModel):
    id: str
    created_at: datetime
    action: AuditAction
    target: str = Field(description="The key or hook id, the user's email, or key_policy.")
    detail: dict[str, Any] = Field(description="What else there is to know; never a key value.")
    actor: str = Field(
        description="A user's email, a key's hint (tt_live_…abcd), operator, or service."
    )
    via: Via
    source_address: str | None
    user_agent: str | None

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryInfo:
        return cls(
            id=entry.id,
            created_at=entry.created_at,
            action=AuditAction(entry.action),
            target=entry.target,
            detail=entry.detail,
            actor=entry.actor,
            via=Via(entry.via),
            source_address=entry.source_address,
            user_agent=entry.user_agent,
        )


class AuditPage(BaseModel):
    data: builtins.list[AuditEntryInfo]
    next_cursor: str | None


class AuditLog:
    """Read and purge the audit log. Nothing here changes an entry."""

    def __init__(self, db: Database, clock: Clock, retention: timedelta) -> None:
        self._db = db
        self._clock = clock
        self._retention = retention
        self._next_purge = clock.now()

    def list(
        self,
        account_id: str,
        page: PageQuery,
        *,
        action: AuditAction | None = None,
        target: str | None = None,
    ) -> AuditPage:
        """The account's entries, newest first, of one action and about one target if given."""
        query = select(AuditEntry).where(AuditEntry.account_id == account_id)
        if action is not None:
            query = query.where(AuditEntry.action == action.value)
        if target is not None:
            query = query.where(AuditEntry.target == target)
        with self._db.transaction() as session:
            rows = builtins.list(session.scalars(newest_first(query, AuditEntry, page)))
        cursor = next_cursor(rows, page)
        return AuditPage(data=[AuditEntryInfo.of(row) for row in rows], next_cursor=cursor)

    def get(self, account_id: str, entry_id: str) -> AuditEntryInfo:
        with self._db.transaction() as session:
            entry = session.scalars(
                select(AuditEntry).where(
                    AuditEntry.id == entry_id, AuditEntry.account_id == account_id
                )
            ).one_or_none()
            if entry is None:
                raise AuditEntryNotFound(
                    f"There is no audit log entry {excerpt(entry_id)} in this account."
                )
            return AuditEntryInfo.of(entry)

    def purge_expired(self) -> int:
        """Delete a batch of entries older than the retention period; returns how many."""
        cutoff = self._clock.now() - self._retention
        with self._db.transaction() as session:
            expired = session.scalars(
                select(AuditEntry.id).where(AuditEntry.created_at < cutoff).limit(PURGE_BATCH)
            ).all()
            if expired:
                session.execute(delete(AuditEntry).where(AuditEntry.id.in_(expired)))
        return len(expired)

    def housekeeping(self) -> None:
        """Purge expired entries at most every ``PURGE_EVERY``; run by the delivery worker's
        loop. Best effort: a failure is logged and tried again next time."""
        now = self._clock.now()
        if now < self._next_purge:
            return
        self._next_purge = now + PURGE_EVERY
        try:
            while self.purge_expired() == PURGE_BATCH:
                pass
        except SQLAlchemyError:
            log.exception("purging expired audit log entries failed; trying again later")
