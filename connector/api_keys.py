"""The API key lifecycle: create, list, roll, delete, and the failure reports of old values.

A key keeps its id and name for life; each roll adds a value (:class:`~connector.models.KeyValue`).
A full value exists only in the :class:`IssuedApiKey` returned by :meth:`KeyManager.create` and
:meth:`KeyManager.roll`; the database holds its SHA-256 and last four characters.
"""

from __future__ import annotations

import builtins
import enum
import unicodedata
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    TypeAdapter,
)
from pydantic_core import PydanticCustomError
from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from . import audit, keys
from .audit import OPERATOR, Actor, AuditAction
from .clock import Clock, iso
from .db import Database
from .errors import (
    AccountNotFound,
    ApiKeyAlreadyDeleted,
    ApiKeyNameTaken,
    ApiKeyNotFound,
    ApiKeyRollConflict,
    LeakedValueGraceRefused,
)
from .events import EventType, record
from .key_policy import policy_of
from .models import Account, ApiKey, AuthGeneration, KeyFailure, KeyValue, new_id
from .revocations import announce
from .webhooks.subscriptions import delete_hooks_of_key

RECOGNISABLE_FOR = timedelta(days=90)
MAX_GRACE = timedelta(days=7)
# A key is due for rolling this long before its rotate-by time.
DUE_WITHIN = timedelta(days=7)

# Control, format (zero-width, bidi overrides and isolates) and surrogate characters, and line
# and paragraph separators: a name holding one may read differently from what it is.
_REFUSED_IN_NAMES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Letters that show as blank space: Hangul fillers and the blank Braille pattern.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _normalised(name: object) -> object:
    # NFKC: a full-width or styled name is the plain one (and taken when the plain one is).
    return unicodedata.normalize("NFKC", name) if isinstance(name, str) else name


def _shows_plainly(name: str) -> str:
    refused = [c for c in name if unicodedata.category(c) in _REFUSED_IN_NAMES]
    if refused:
        shown = ", ".join(dict.fromkeys(f"U+{ord(c):04X}" for c in refused))
        raise PydanticCustomError(
            "key_name_characters",
            "Remove the control or invisible characters ({shown}): a name holds none",
            {"shown": shown},
        )
    if all(_invisible(c) for c in name):
        raise PydanticCustomError(
            "key_name_invisible", "Use at least one visible letter, digit or symbol"
        )
    return name


def _invisible(character: str) -> bool:
    # Spaces and combining marks show nothing on their own.
    return unicodedata.category(character)[0] in "ZM" or character in _BLANK_LETTERS


KeyName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    BeforeValidator(_normalised),
    AfterValidator(_shows_plainly),
    Field(
        description="NFKC-normalised and trimmed, 1-100 characters, with no control or "
        "invisible characters; unique among the account's live keys, ignoring case."
    ),
]
_KEY_NAME: TypeAdapter[str] = TypeAdapter(KeyName)
GraceSeconds = Annotated[
    int,
    Field(
        strict=True,
        ge=0,
        le=int(MAX_GRACE.total_seconds()),
        description="How long the old value keeps working after the roll (0 to 7 days).",
    ),
]


class Permission(enum.StrEnum):
    STANDARD = "standard"
    ADMIN = "admin"


class KeyStatus(enum.StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


class Rotation(enum.StrEnum):
    """Where a key stands against its rotate-by time."""

    OK = "ok"
    DUE = "due"
    OVERDUE = "overdue"


def rotate_by(key: ApiKey, max_age_days: int | None) -> datetime | None:
    """When the key is to be rolled: its own date, else its creation or last roll plus the
    policy's maximum age, else never (and never for a deleted key)."""
    if key.deleted_at is not None:
        return None
    return live_key_rotate_by(key.rotate_by, key.rolled_at or key.created_at, max_age_days)


def live_key_rotate_by(
    own: datetime | None, clock_started: datetime, max_age_days: int | None
) -> datetime | None:
    """:func:`rotate_by` of a live key, from its columns alone."""
    if own is not None:
        return own
    if max_age_days is None:
        return None
    return clock_started + timedelta(days=max_age_days)


def rotation(deadline: datetime | None, now: datetime) -> Rotation:
    if deadline is None or now < deadline - DUE_WITHIN:
        return Rotation.OK
    return Rotation.DUE if now < deadline else Rotation.OVERDUE


class OldValueInfo(BaseModel):
    """A value replaced by a roll (or current at deletion), recognisable for 90 days."""

    hint: str
    retired_at: datetime
    works_until: datetime | None = Field(
        description="End of the roll's grace period; null when the value was refused at once."
    )


class ApiKeyInfo(BaseModel):
    id: str
    name: str
    permission: Permission
    hint: str = Field(description="The key's latest value, shown as tt_live_…abcd.")
    status: KeyStatus
    created_at: datetime
    rolled_at: datetime | None
    last_used_at: datetime | None
    deleted_at: datetime | None
    rotate_by: datetime | None = Field(
        description="When the key is to be rolled: its own rotate_by if set, else its creation "
        "or last roll plus the key policy's max_age_days; null: no deadline."
    )
    rotation: Rotation = Field(
        description="ok; due: rotate_by is within 7 days; overdue: rotate_by has passed."
    )
    leaked_at: datetime | None = Field(
        description="When a working value of the key was last reported leaked (secret "
        "scanning, scan --report); null if never."
    )
    leak_url: str | None = Field(
        description="Where that leak was found: the URL GitHub gave, or the FILE:LINE a scan "
        "reported."
    )
    value_leaked: bool = Field(
        description="Whether the key's current value was reported leaked: it is then rolled "
        "with no grace period."
    )
    old_values: list[OldValueInfo]

    @classmethod
    def of(cls, key: ApiKey, now: datetime, max_age_days: int | None) -> ApiKeyInfo:
        latest = key.latest_value
        deadline = rotate_by(key, max_age_days)
        return cls(
            id=key.id,
            name=key.name,
            permission=Permission(key.permission),
            hint=keys.display_hint(latest.last4),
            status=KeyStatus.DELETED if key.deleted_at else KeyStatus.ACTIVE,
            created_at=key.created_at,
            rolled_at=key.rolled_at,
            last_used_at=key.last_used_at,
            deleted_at=key.deleted_at,
            rotate_by=deadline,
            rotation=rotation(deadline, now),
            leaked_at=key.leaked_at,
            leak_url=key.leak_url,
            value_leaked=latest.leaked_at is not None,
            old_values=[
                OldValueInfo(
                    hint=keys.display_hint(value.last4),
                    retired_at=value.retired_at,
                    works_until=value.works_until,
                )
                for value in reversed(key.values)
                if value.retired_at is not None and now - value.retired_at < RECOGNISABLE_FOR
            ],
        )


class IssuedApiKey(ApiKeyInfo):
    value: str = Field(description="The full key. It is shown this once and never again.")


class FailureReport(BaseModel):
    """Uses of a retired value by one client, aggregated."""

    value_hint: str
    reason: str = Field(
        description="rolled or deleted: the value was refused; grace_period: it still worked."
    )
    client: str = Field(description="zapier, n8n or other, from the User-Agent.")
    count: int
    first_seen_at: datetime
    last_seen_at: datetime
    last_path: str


def _report(row: KeyFailure) -> FailureReport:
    return FailureReport(
        value_hint=keys.display_hint(row.value.last4),
        reason=row.reason,
        client=row.client,
        count=row.count,
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
        last_path=row.last_path,
    )


def _info(session: Session, key: ApiKey, now: datetime) -> ApiKeyInfo:
    return ApiKeyInfo.of(key, now, policy_of(session, key.account_id).max_age_days)


def _event_data(key: ApiKeyInfo) -> dict[str, Any]:
    return key.model_dump(mode="json")


class KeyManager:
    """Create, list, roll and delete keys. Each method is one transaction.

    ``account_id`` scopes every lookup: a key of another account is "not found". The CLI, which
    acts as the operator, passes ``None`` to reach any account's key by id.
    ``on_revoke`` runs after a roll or delete commits and before it returns; the app passes the
    revocation signal's ``bump``, so that no process of this machine accepts the old value once
    the caller has the answer.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock | None = None,
        on_revoke: Callable[[str], None] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock or Clock()
        self._on_revoke = on_revoke or (lambda key_id: None)

    def create(
        self,
        account_id: str,
        name: str,
        permission: Permission = Permission.STANDARD,
        *,
        actor: Actor = OPERATOR,
    ) -> IssuedApiKey:
        name = _KEY_NAME.validate_python(name)
        now = self._clock.now()
        fresh = keys.NewKeyValue.generate()
        with self._db.transaction() as session:
            if session.get(Account, account_id) is None:
                raise AccountNotFound(f"There is no account {account_id!r}.")
            key = ApiKey(
                id=new_id("key_"),
                account_id=account_id,
                name=name,
                permission=Permission(permission).value,
                created_at=now,
                values=[KeyValue(fingerprint=fresh.fingerprint, last4=fresh.last4, issued_at=now)],
            )
            session.add(key)
            self._flush_unique_name(session, name)
            info = _info(session, key, now)
            record(session, account_id, EventType.API_KEY_CREATED, _event_data(info), now)
            audit.record(
                session,
                account_id,
                AuditAction.API_KEY_CREATED,
                key.id,
                actor,
                now,
                {"name": key.name, "permission": key.permission},
            )
            return IssuedApiKey(**info.model_dump(), value=fresh.value)

    def list(
        self,
        account_id: str,
        *,
        include_deleted: bool = False,
        rotation: Collection[Rotation] | None = None,
    ) -> list[ApiKeyInfo]:
        """The account's keys, newest first; only those whose rotation is in ``rotation`` if
        given."""
        now = self._clock.now()
        query = (
            select(ApiKey)
            .where(ApiKey.account_id == account_id)
            .options(selectinload(ApiKey.values))
            .order_by(ApiKey.created_at.desc(), ApiKey.id)
        )
        if not include_deleted:
            query = query.where(ApiKey.deleted_at.is_(None))
        with self._db.transaction() as session:
            max_age_days = policy_of(session, account_id).max_age_days
            found = [ApiKeyInfo.of(key, now, max_age_days) for key in session.scalars(query)]
        return [key for key in found if rotation is None or key.rotation in rotation]

    def get(self, account_id: str | None, key_id: str) -> ApiKeyInfo:
        with self._db.transaction() as session:
            return _info(session, self._find(session, account_id, key_id), self._clock.now())

    def set_rotate_by(
        self,
        account_id: str | None,
        key_id: str,
        deadline: datetime | None,
        *,
        actor: Actor = OPERATOR,
    ) -> ApiKeyInfo:
        """Give the key a rotate-by time of its own (None: follow the account's policy again)."""
        now = self._clock.now()
        with self._db.transaction() as session:
            key = self._find(session, account_id, key_id, for_update=True)
            self._refuse_if_deleted(key, "given a rotate-by time")
            key.rotate_by = deadline
            audit.record(
                session,
                key.account_id,
                AuditAction.API_KEY_ROTATE_BY_SET,
                key.id,
                actor,
                now,
                {"name": key.name, "rotate_by": iso(deadline) if deadline else None},
            )
            return _info(session, key, now)

    def roll(
        self,
        account_id: str | None,
        key_id: str,
        grace: timedelta = timedelta(0),
        *,
        actor: Actor = OPERATOR,
    ) -> IssuedApiKey:
        """Give the key a new value. The old one is refused at once, or works until ``grace``
        has passed (at most 7 days)."""
        with self._db.transaction() as session:
            issued = self.roll_within(session, account_id, key_id, grace, actor=actor)
        self.revoked(key_id)
        return issued

    def roll_within(
        self,
        session: Session,
        account_id: str | None,
        key_id: str,
        grace: timedelta,
        *,
        actor: Actor,
    ) -> IssuedApiKey:
        """:meth:`roll` in the caller's transaction (a leak response rolls in the one that
        marks the leak); the caller calls :meth:`revoked` once it has committed."""
        if not timedelta(0) <= grace <= MAX_GRACE:
            raise ValueError("grace must be between 0 and 7 days")
        now = self._clock.now()
        fresh = keys.NewKeyValue.generate()
        key = self._find(session, account_id, key_id, for_update=True)
        self._refuse_if_deleted(key, "rolled")
        current = key.latest_value
        if grace and current.leaked_at is not None:
            # Whoever found it could use it for the whole grace period.
            raise LeakedValueGraceRefused(
                f"The current value of the API key {key.name!r} was reported leaked, so it must "
                "stop working at once: roll it with no grace period (grace_seconds 0)."
            )
        # Conditional, so two rolls racing on SQLite (where FOR UPDATE does nothing) cannot
        # both retire the same value and leave two new ones working.
        retired: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(KeyValue)
            .where(KeyValue.id == current.id, KeyValue.retired_at.is_(None))
            .values(retired_at=now, works_until=now + grace if grace else None)
        )
        if retired.rowcount != 1:
            raise ApiKeyRollConflict(
                f"The API key {key.name!r} was rolled by another request at the same "
                "moment. Get the key to see its state before rolling it again.",
            )
        # A new roll also shortens older grace periods to its own: rolling again with no
        # grace cuts every old value off at once.
        for value in key.values:
            if value.works_until is not None and value.works_until > now + grace:
                value.works_until = now + grace
        key.values.append(KeyValue(fingerprint=fresh.fingerprint, last4=fresh.last4, issued_at=now))
        key.rolled_at = now
        # A new value starts a new rotation period: the key's own deadline was for the old one.
        key.rotate_by = None
        self._revoked(session, key.id, now)
        info = _info(session, key, now)
        record(session, key.account_id, EventType.API_KEY_ROLLED, _event_data(info), now)
        audit.record(
            session,
            key.account_id,
            AuditAction.API_KEY_ROLLED,
            key.id,
            actor,
            now,
            {"name": key.name, "grace_seconds": int(grace.total_seconds())},
        )
        return IssuedApiKey(**info.model_dump(), value=fresh.value)

    def revoked(self, key_id: str) -> None:
        """Drop this machine's cached values of the key, after a roll or delete committed."""
        self._on_revoke(key_id)

    def delete(self, account_id: str | None, key_id: str, *, actor: Actor = OPERATOR) -> ApiKeyInfo:
        """Stop the key working: its current value and any old value still in a grace period
        are refused from now on. The record stays, marked deleted."""
        now = self._clock.now()
        with self._db.transaction() as session:
            key = self._find(session, account_id, key_id, for_update=True)
            self._refuse_if_deleted(key, "deleted")
            key.deleted_at = now
            for value in key.values:
                if value.retired_at is None:
                    value.retired_at = now
                if value.works_until is not None and value.works_until > now:
                    value.works_until = now
            self._revoked(session, key.id, now)
            delete_hooks_of_key(session, key.id, actor, now)
            info = _info(session, key, now)
            record(session, key.account_id, EventType.API_KEY_DELETED, _event_data(info), now)
            audit.record(
                session,
                key.account_id,
                AuditAction.API_KEY_DELETED,
                key.id,
                actor,
                now,
                {"name": key.name},
            )
        self.revoked(key_id)
        return info

    def failures(self, account_id: str | None, key_id: str) -> builtins.list[FailureReport]:
        with self._db.transaction() as session:
            self._find(session, account_id, key_id)
            rows = session.scalars(
                select(KeyFailure)
                .where(KeyFailure.key_id == key_id)
                .options(selectinload(KeyFailure.value))
                .order_by(KeyFailure.last_seen_at.desc(), KeyFailure.id)
            )
            return [_report(row) for row in rows]

    def failures_by_key(self, account_id: str) -> dict[str, builtins.list[FailureReport]]:
        """Every key's failure reports in one query: the API keys page's "still in use"."""
        with self._db.transaction() as session:
            rows = session.scalars(
                select(KeyFailure)
                .join(ApiKey, KeyFailure.key_id == ApiKey.id)
                .where(ApiKey.account_id == account_id)
                .options(selectinload(KeyFailure.value))
                .order_by(KeyFailure.last_seen_at.desc(), KeyFailure.id)
            )
            reports: dict[str, builtins.list[FailureReport]] = {}
            for row in rows:
                reports.setdefault(row.key_id, []).append(_report(row))
            return reports

    @staticmethod
    def _find(
        session: Session, account_id: str | None, key_id: str, *, for_update: bool = False
    ) -> ApiKey:
        query = select(ApiKey).where(ApiKey.id == key_id).options(selectinload(ApiKey.values))
        if account_id is not None:
            query = query.where(ApiKey.account_id == account_id)
        if for_update:
            # Two concurrent rolls of one key must not both retire the same value.
            query = query.with_for_update()
        key = session.scalars(query).one_or_none()
        if key is None:
            where = "" if account_id is None else " in this account"
            raise ApiKeyNotFound(f"There is no API key {key_id!r}{where}.")
        return key

    @staticmethod
    def _refuse_if_deleted(key: ApiKey, action: str) -> None:
        if key.deleted_at is not None:
            raise ApiKeyAlreadyDeleted(
                f"The API key {key.name!r} was deleted; a deleted key cannot be {action}. "
                "Create a new key instead.",
            )

    @staticmethod
    def _flush_unique_name(session: Session, name: str) -> None:
        try:
            session.flush()
        except IntegrityError:
            raise ApiKeyNameTaken(
                f"This account already has a key named {name!r}. Choose another name, "
                "or roll the existing key to get a new value.",
                details={"field": "name"},
            ) from None

    @staticmethod
    def _revoked(session: Session, key_id: str, now: datetime) -> None:
        """Tell every process that cached keys may be stale (other machines through
        :func:`~connector.revocations.announce`), and forget values past the 90 days they stay
        recognisable (the row stays for its failure history)."""
        session.execute(
            update(AuthGeneration)
            .where(AuthGeneration.id == 1)
            .values(generation=AuthGeneration.generation + 1)
        )
        announce(session, key_id)
        session.execute(
            update(KeyValue)
            .where(KeyValue.retired_at < now - RECOGNISABLE_FOR, KeyValue.fingerprint.is_not(None))
            .values(fingerprint=None)
        )
