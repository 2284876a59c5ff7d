"""Webhook subscriptions per account, and what became of their deliveries.

A subscription remembers the key that created it. Rolling that key keeps it (the key id stays);
deleting the key deletes its subscriptions, in the same transaction."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, selectinload

from .. import audit
from ..audit import OPERATOR, Actor, AuditAction
from ..clock import Clock
from ..db import Database
from ..encryption import StoredSecrets, UnreadableSecret
from ..errors import (
    DeliveryNotFailed,
    DeliveryNotFound,
    HookDisabled,
    HookLimitReached,
    HookNotFound,
    excerpt,
)
from ..events import DeliveryStatus, EventType
from ..models import ApiKey, Delivery, DeliveryAttempt, Hook, new_id
from ..paging import PageQuery, newest_first, next_cursor
from . import signing
from .targets import MAX_URL_LENGTH, check_target

MAX_HOOKS_PER_ACCOUNT = 2_000


class NewHook(BaseModel):
    target_url: Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)]
    events: Annotated[list[EventType], Field(min_length=1, max_length=len(EventType))]


class HookInfo(BaseModel):
    id: str
    target_url: str
    events: list[EventType]
    platform: str = Field(description="Which surface created it: api, zapier or n8n.")
    key_id: str = Field(description="The API key that created it; deleting that key deletes it.")
    created_at: datetime
    failing_since: datetime | None
    disabled_at: datetime | None = Field(description="Set after 5 days of failed deliveries.")

    @classmethod
    def of(cls, hook: Hook) -> HookInfo:
        return cls(
            id=hook.id,
            target_url=hook.target_url,
            events=[EventType(name) for name in hook.event_types],
            platform=hook.platform,
            key_id=hook.key_id,
            created_at=hook.created_at,
            failing_since=hook.failing_since,
            disabled_at=hook.disabled_at,
        )


class CreatedHook(HookInfo):
    secret: str = Field(
        description="Verifies the webhook-signature of deliveries. Shown this once only."
    )


class AttemptInfo(BaseModel):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryInfo(BaseModel):
    id: str = Field(description="Also the webhook-id header of every attempt.")
    event_id: str
    event_type: EventType
    status: DeliveryStatus
    attempts: list[AttemptInfo]
    next_attempt_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, delivery: Delivery, attempts: builtins.list[DeliveryAttempt]) -> DeliveryInfo:
        return cls(
            id=delivery.id,
            event_id=delivery.event_id,
            event_type=EventType(delivery.event.type),
            status=DeliveryStatus(delivery.status),
            attempts=[
                AttemptInfo(
                    attempted_at=a.attempted_at,
                    status_code=a.status_code,
                    error=a.error,
                    duration_ms=a.duration_ms,
                )
                for a in attempts
            ],
            next_attempt_at=delivery.next_attempt_at,
            created_at=delivery.created_at,
        )


class Integration(BaseModel):
    """A subscription as the API keys page shows it: with its key's name and last attempt."""

    hook: HookInfo
    key_name: str
    last_attempt: AttemptInfo | None


class DeliveryPage(BaseModel):
    data: builtins.list[DeliveryInfo]
    next_cursor: str | None


class HookStore:
    def __init__(
        self, db: Database, clock: Clock, secrets: StoredSecrets, *, allow_private_targets: bool
    ) -> None:
        self._db = db
        self._clock = clock
        self._secrets = secrets
        self._allow_private = allow_private_targets

    def create(
        self,
        account_id: str,
        key_id: str,
        new: NewHook,
        platform: str,
        *,
        actor: Actor = OPERATOR,
    ) -> CreatedHook:
        check_target(new.target_url, allow_private=self._allow_private)
        secret = signing.new_secret()
        hook = Hook(
            id=new_id("hook_"),
            account_id=account_id,
            key_id=key_id,
            target_url=new.target_url,
            event_types=sorted({event.value for event in new.events}),
            platform=platform,
            encrypted_secret=self._secrets.encrypt(secret),
            created_at=self._clock.now(),
        )
        with self._db.transaction() as session:
            count = session.scalar(select(func.count()).where(Hook.account_id == account_id))
            if count is not None and count >= MAX_HOOKS_PER_ACCOUNT:
                raise HookLimitReached(
                    f"This account already has {MAX_HOOKS_PER_ACCOUNT} webhook subscriptions. "
                    "Delete unused ones first.",
                )
            session.add(hook)
            audit.record(
                session,
                account_id,
                AuditAction.HOOK_CREATED,
                hook.id,
                actor,
                hook.created_at,
                audit_detail(hook),
            )
        return CreatedHook(**HookInfo.of(hook).model_dump(), secret=secret)

    def reencrypt_secrets(self) -> tuple[int, builtins.list[str]]:
        """Every subscription's signing secret encrypted under the current secret key (after a
        rotation): how many were, and the ids of those readable under neither key."""
        unreadable = []
        with self._db.transaction() as session:
            hooks = builtins.list(session.scalars(select(Hook).order_by(Hook.id)))
            for hook in hooks:
                try:
                    hook.encrypted_secret = self._secrets.reencrypt(hook.encrypted_secret)
                except UnreadableSecret:
                    unreadable.append(hook.id)
        return len(hooks) - len(unreadable), unreadable

    def list(self, account_id: str) -> builtins.list[HookInfo]:
        with self._db.transaction() as session:
            hooks = session.scalars(
                select(Hook)
                .where(Hook.account_id == account_id)
                .order_by(Hook.created_at.desc(), Hook.id.desc())
            )
            return [HookInfo.of(hook) for hook in hooks]

    def integrations(self, account_id: str) -> builtins.list[Integration]:
        with self._db.transaction() as session:
            hooks = builtins.list(
                session.execute(
                    select(Hook, ApiKey.name)
                    .join(ApiKey, Hook.key_id == ApiKey.id)
                    .where(Hook.account_id == account_id)
                    .order_by(Hook.created_at.desc(), Hook.id.desc())
                )
            )
            latest = (
                select(func.max(DeliveryAttempt.id))
                .join(Delivery, DeliveryAttempt.delivery_id == Delivery.id)
                .where(Delivery.hook_id.in_([hook.id for hook, _ in hooks]))
                .group_by(Delivery.hook_id)
            )
            attempts = {
                hook_id: attempt
                for attempt, hook_id in session.execute(
                    select(DeliveryAttempt, Delivery.hook_id)
                    .join(Delivery, DeliveryAttempt.delivery_id == Delivery.id)
                    .where(DeliveryAttempt.id.in_(latest))
                )
            }
            return [
                Integration(
                    hook=HookInfo.of(hook),
                    key_name=key_name,
                    last_attempt=AttemptInfo.model_validate(attempts[hook.id], from_attributes=True)
                    if hook.id in attempts
                    else None,
                )
                for hook, key_name in hooks
            ]

    def get(self, account_id: str, hook_id: str) -> HookInfo:
        with self._db.transaction() as session:
            return HookInfo.of(_find_hook(session, account_id, hook_id))

    def delete(self, account_id: str, hook_id: str, *, actor: Actor = OPERATOR) -> None:
        with self._db.transaction() as session:
            hook = _find_hook(session, account_id, hook_id)
            session.delete(hook)
            audit.record(
                session,
                account_id,
                AuditAction.HOOK_DELETED,
                hook.id,
                actor,
                self._clock.now(),
                audit_detail(hook),
            )

    def deliveries(self, account_id: str, hook_id: str, page: PageQuery) -> DeliveryPage:
        with self._db.transaction() as session:
            _find_hook(session, account_id, hook_id)
            query = (
                select(Delivery)
                .where(Delivery.hook_id == hook_id)
                .options(selectinload(Delivery.event))
            )
            rows = builtins.list(session.scalars(newest_first(query, Delivery, page)))
            cursor = next_cursor(rows, page)
            attempts: dict[str, builtins.list[DeliveryAttempt]] = {row.id: [] for row in rows}
            for attempt in session.scalars(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.delivery_id.in_(attempts))
                .order_by(DeliveryAttempt.id)
            ):
                attempts[attempt.delivery_id].append(attempt)
            return DeliveryPage(
                data=[DeliveryInfo.of(row, attempts[row.id]) for row in rows], next_cursor=cursor
            )

    def retry(self, account_id: str, hook_id: str, delivery_id: str) -> DeliveryInfo:
        """Put a failed delivery back on its schedule, from the first try."""
        with self._db.transaction() as session:
            hook = _find_hook(session, account_id, hook_id)
            delivery = session.scalars(
                select(Delivery).where(Delivery.id == delivery_id, Delivery.hook_id == hook.id)
            ).one_or_none()
            if delivery is None:
                raise DeliveryNotFound(
                    f"There is no delivery {delivery_id!r} for this subscription.",
                )
            if delivery.status != DeliveryStatus.FAILED:
                raise DeliveryNotFailed(
                    f"Only failed deliveries can be retried; this one is {delivery.status}.",
                )
            if hook.disabled_at is not None:
                raise HookDisabled(
                    "This subscription is disabled after failing for 5 days. Subscribe again "
                    "to receive events.",
                )
            now = self._clock.now()
            delivery.status = DeliveryStatus.PENDING.value
            delivery.attempts = 0
            delivery.next_attempt_at = now
            delivery.lease_until = None
            attempts = builtins.list(
                session.scalars(
                    select(DeliveryAttempt)
                    .where(DeliveryAttempt.delivery_id == delivery.id)
                    .order_by(DeliveryAttempt.id)
                )
            )
            return DeliveryInfo.of(delivery, attempts)


def audit_detail(hook: Hook) -> dict[str, Any]:
    """What the audit log says of a subscription: its host only, since a target URL's path or
    query may hold the receiver's secret token."""
    return {
        "platform": hook.platform,
        "events": hook.event_types,
        "target_host": urlsplit(hook.target_url).hostname,
    }


def delete_hooks_of_key(session: Session, key_id: str, actor: Actor, now: datetime) -> None:
    """Part of deleting a key: its subscriptions go with it, each in the audit log as deleted
    by whoever deleted the key."""
    for hook in session.scalars(select(Hook).where(Hook.key_id == key_id)):
        audit.record(
            session,
            hook.account_id,
            AuditAction.HOOK_DELETED,
            hook.id,
            actor,
            now,
            audit_detail(hook),
        )
    session.execute(delete(Hook).where(Hook.key_id == key_id))


def _find_hook(session: Session, account_id: str, hook_id: str) -> Hook:
    hook = session.scalars(
        select(Hook).where(Hook.id == hook_id, Hook.account_id == account_id)
    ).one_or_none()
    if hook is None:
        raise HookNotFound(
            f"There is no webhook subscription {excerpt(hook_id)} in this account.",
        )
    return hook
