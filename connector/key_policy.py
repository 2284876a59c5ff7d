"""An account's key policy: how old a key may get before it is due to be rolled, and what a
reported leak does to a key. The policy only tells; nothing is rolled because a key is old."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from . import audit
from .audit import OPERATOR, Actor, AuditAction
from .clock import Clock
from .db import Database, insert_if_absent
from .errors import AccountNotFound
from .models import Account, KeyPolicy

MAX_AGE_DAYS_LIMIT = 3650


class OnLeak(enum.StrEnum):
    """What a reported leak of a key's value does: tell (an event, a banner), or also roll the
    key at once with no grace period."""

    NOTIFY = "notify"
    ROLL = "roll"


MaxAgeDays = Annotated[
    int,
    Field(
        strict=True,
        ge=1,
        le=MAX_AGE_DAYS_LIMIT,
        description="Days after its creation or last roll by which a key is to be rolled "
        f"(1-{MAX_AGE_DAYS_LIMIT}); null: no maximum age.",
    ),
]


class KeyPolicyChange(BaseModel):
    """``PUT /v1/key-policy``: the fields given replace the current ones; those left out keep
    their value."""

    model_config = ConfigDict(extra="forbid")

    max_age_days: MaxAgeDays | None = None
    on_leak: OnLeak = Field(
        default=OnLeak.NOTIFY,
        description="notify: a leaked key is marked and api_key.leaked is sent; roll: it is "
        "also rolled at once, with no grace period.",
    )


class KeyPolicyInfo(BaseModel):
    max_age_days: int | None
    on_leak: OnLeak
    updated_at: datetime | None = Field(description="null while the account has the default.")

    @classmethod
    def of(cls, row: KeyPolicy | None) -> KeyPolicyInfo:
        if row is None:
            return DEFAULT
        return cls(
            max_age_days=row.max_age_days, on_leak=OnLeak(row.on_leak), updated_at=row.updated_at
        )


DEFAULT = KeyPolicyInfo(max_age_days=None, on_leak=OnLeak.NOTIFY, updated_at=None)


def policy_of(session: Session, account_id: str) -> KeyPolicyInfo:
    """The account's policy, read in the caller's transaction (the default without a row)."""
    return KeyPolicyInfo.of(session.get(KeyPolicy, account_id))


class KeyPolicies:
    """Read and change accounts' key policies. Each method is one transaction."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def get(self, account_id: str) -> KeyPolicyInfo:
        with self._db.transaction() as session:
            return policy_of(session, account_id)

    def change(
        self, account_id: str, change: KeyPolicyChange, *, actor: Actor = OPERATOR
    ) -> KeyPolicyInfo:
        now = self._clock.now()
        with self._db.transaction() as session:
            if session.get(Account, account_id) is None:
                raise AccountNotFound(f"There is no account {account_id!r}.")
            # A row first (the default's), so that two changes at once take turns on its lock.
            insert_if_absent(
                session,
                KeyPolicy,
                account_id=account_id,
                max_age_days=DEFAULT.max_age_days,
                on_leak=DEFAULT.on_leak.value,
                updated_at=now,
            )
            row = session.get_one(KeyPolicy, account_id, with_for_update=True)
            before = KeyPolicyInfo.of(row)
            if "max_age_days" in change.model_fields_set:
                row.max_age_days = change.max_age_days
            if "on_leak" in change.model_fields_set:
                row.on_leak = OnLeak(change.on_leak).value
            row.updated_at = now
            after = KeyPolicyInfo.of(row)
            audit.record(
                session,
                account_id,
                AuditAction.KEY_POLICY_CHANGED,
                "key_policy",
                actor,
                now,
                {
                    "before": before.model_dump(mode="json", exclude={"updated_at"}),
                    "after": after.model_dump(mode="json", exclude={"updated_at"}),
                },
            )
            return after
