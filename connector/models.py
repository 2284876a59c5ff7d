"""The tables. The schema itself is owned by the Alembic migrations in ``migrations/``."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .keys import BASE62


def new_id(prefix: str) -> str:
    """A public identifier such as ``key_3fZk…``: a type prefix and 20 random base62 characters."""
    return prefix + "".join(secrets.choice(BASE62) for _ in range(20))


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Account(Base):
    """A workspace: it owns users, keys, templates and documents."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Each web session carries the value from its sign-in; signing out moves it on, which ends
    # every session of the user, a copied cookie's included.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    account: Mapped[Account] = relationship()


class ApiKey(Base):
    """A named key. Its values (current and retired) live in :class:`KeyValue`, so a roll keeps
    the id and name and only adds a value."""

    __tablename__ = "api_keys"
    __table_args__ = (
        # Names are unique among an account's live keys, ignoring case: "Zapier" and "zapier"
        # side by side on the keys page would be a trap.
        Index(
            "uq_api_keys_live_name",
            "account_id",
            text("lower(name)"),
            unique=True,
            sqlite_where="deleted_at IS NULL",
            postgresql_where="deleted_at IS NULL",
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    permission: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The key's own deadline for its next roll, overriding the account's policy; a roll clears it.
    rotate_by: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When and where a value of this key was last reported leaked (never the value itself).
    leaked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    leak_url: Mapped[str | None] = mapped_column(Text)

    account: Mapped[Account] = relationship()
    values: Mapped[list[KeyValue]] = relationship(
        back_populates="key", order_by="KeyValue.id", cascade="all, delete-orphan"
    )

    @property
    def latest_value(self) -> KeyValue:
        """The value issued last: the live one, or the one that was live when it was deleted."""
        return self.values[-1]


class KeyValue(Base):
    """One value a key has had, stored only as its SHA-256. ``retired_at`` is set when a roll or
    delete replaced it; ``works_until`` is the end of a roll's grace period."""

    __tablename__ = "api_key_values"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    # Cleared once the value is past the 90 days it stays recognisable; the row keeps its history.
    fingerprint: Mapped[str | None] = mapped_column(String(64), unique=True)
    last4: Mapped[str] = mapped_column(String(4))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    works_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When this value was first reported leaked: each value is a leak of its own, once.
    leaked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    key: Mapped[ApiKey] = relationship(back_populates="values")


class KeyPolicy(Base):
    """An account's key policy; an account without a row has the default one (no maximum age,
    a leak is told, not acted on)."""

    __tablename__ = "key_policies"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    max_age_days: Mapped[int | None] = mapped_column(Integer)
    on_leak: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RotationNotice(Base):
    """An api_key.rotation_due event recorded for one value of a key, for the rotate-by time it
    announced, at one stage (due, overdue). Its primary key lets only one process record it,
    once. A rotation period is one value with one deadline: a roll (a new value) or a moved
    deadline starts the next one with no notices."""

    __tablename__ = "api_key_rotation_notices"

    value_id: Mapped[int] = mapped_column(
        ForeignKey("api_key_values.id", ondelete="CASCADE"), primary_key=True
    )
    rotate_by: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    stage: Mapped[str] = mapped_column(String(16), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditEntry(Base):
    """One security-relevant action, written in the transaction of the action itself. Nothing
    changes an entry; entries older than BRIDGE_AUDIT_RETENTION_DAYS are purged."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_account_newest", "account_id", "created_at", "id"),
        Index("ix_audit_log_account_action_newest", "account_id", "action", "created_at", "id"),
        Index("ix_audit_log_account_target_newest", "account_id", "target", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    action: Mapped[str] = mapped_column(String(40))
    # What was acted on: a key or hook id, a user's email, or "key_policy".
    target: Mapped[str] = mapped_column(String(254))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    # A user's email or a key's hint (tt_live_…abcd), never a key value.
    actor: Mapped[str] = mapped_column(String(254))
    via: Mapped[str] = mapped_column(String(16))
    source_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))


class KeyFailure(Base):
    """Aggregated uses of a retired value: one row per (value, reason, client)."""

    __tablename__ = "api_key_failures"
    __table_args__ = (UniqueConstraint("value_id", "reason", "client"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    value_id: Mapped[int] = mapped_column(ForeignKey("api_key_values.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(16))
    client: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(Integer)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_path: Mapped[str] = mapped_column(Text)

    value: Mapped[KeyValue] = relationship()


class OldValueAlert(Base):
    """When api_key.old_value_used was last recorded for a key in one situation: at most once
    an hour each, so a failing Zap cannot flood anyone, yet a new situation is told at once."""

    __tablename__ = "api_key_old_value_alerts"

    key_id: Mapped[str] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    situation: Mapped[str] = mapped_column(String(32), primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RefusalRepeat(Base):
    """A refusal a client repeats by itself (n8n's), remembered for a few seconds so that its
    repeat is known whichever worker or machine answers it."""

    __tablename__ = "refusal_repeats"

    request: Mapped[str] = mapped_column(String(64), primary_key=True)
    remembered_until: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class AuthGeneration(Base):
    """A single counter bumped by every roll and delete: the safety net that each process polls
    behind the revocation signal and listener (:mod:`connector.revocations`)."""

    __tablename__ = "auth_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer)


class Template(Base):
    __tablename__ = "templates"
    __table_args__ = (Index("ix_templates_account_newest", "account_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    text_body: Mapped[str | None] = mapped_column(Text)
    # Worked out when saved, so listing templates never parses them.
    variables: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The PDF engine and page setup it asks for; null: the request's, or the deployment's.
    engine: Mapped[str | None] = mapped_column(String(16))
    page: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Document(Base):
    """A rendered file's record. The file itself lives in the file store until ``expires_at``;
    the record stays after the file is purged."""

    __tablename__ = "documents"
    __table_args__ = (
        Index("ix_documents_account_newest", "account_id", "created_at", "id"),
        Index("ix_documents_template_newest", "account_id", "template_id", "created_at", "id"),
        Index("ux_documents_idempotency_key", "account_id", "idempotency_key", unique=True),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    template_id: Mapped[str | None] = mapped_column(ForeignKey("templates.id", ondelete="SET NULL"))
    template_name: Mapped[str] = mapped_column(String(200))
    format: Mapped[str] = mapped_column(String(8))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(16))
    storage_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The client's Idempotency-Key, and a digest of the request it came with.
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_digest: Mapped[str | None] = mapped_column(String(64))
    # Scripts its engine could not print correctly (characters its fonts lack; for xhtml2pdf
    # also scripts needing shaping or right-to-left order); null for documents made before.
    missing_scripts: Mapped[list[str] | None] = mapped_column(JSON)


class Event(Base):
    """Something that happened in an account, written in the same transaction as the change
    (the outbox): the source of webhook deliveries and of ``GET /v1/events``."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_account_newest", "account_id", "created_at", "id"),
        Index("ix_events_account_type_newest", "account_id", "type", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Hook(Base):
    """A webhook subscription: events of the listed types are POSTed to ``target_url``."""

    __tablename__ = "hooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    target_url: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(JSON)
    # Which surface made it (api, zapier, n8n): decides the shape of the payload delivered.
    platform: Mapped[str] = mapped_column(String(16))
    # The Standard Webhooks signing secret, encrypted (connector.encryption): signing needs it
    # back. The default only lets migration 0010 add the column in place on SQLite.
    encrypted_secret: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Delivery(Base):
    """One event for one subscription, tried until it succeeds or its schedule runs out."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "hook_id"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_hook_newest", "hook_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    hook_id: Mapped[str] = mapped_column(ForeignKey("hooks.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    hook: Mapped[Hook] = relationship()
    event: Mapped[Event] = relationship()


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
