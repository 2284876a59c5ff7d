"""Events: written in the same transaction as the change that causes them (an outbox), and fanned
out there and then into one pending delivery per matching subscription. A change and its
deliveries commit together or not at all, so no event is lost between them."""

from __future__ import annotations

import builtins
import enum
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from .clock import Clock
from .db import Database
from .models import Delivery, Event, Hook, new_id
from .paging import PageQuery, newest_first, next_cursor


class EventType(enum.StrEnum):
    DOCUMENT_CREATED = "document.created"
    TEMPLATE_CREATED = "template.created"
    TEMPLATE_UPDATED = "template.updated"
    API_KEY_CREATED = "api_key.created"
    API_KEY_ROLLED = "api_key.rolled"
    API_KEY_DELETED = "api_key.deleted"
    API_KEY_OLD_VALUE_USED = "api_key.old_value_used"
    API_KEY_ROTATION_DUE = "api_key.rotation_due"
    # A working value was reported found in public (connector/leaks.py).
    API_KEY_LEAKED = "api_key.leaked"
    HOOK_DISABLED = "hook.disabled"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class EventInfo(BaseModel):
    id: str
    type: EventType
    created_at: datetime
    data: dict[str, Any] = Field(description="The event's fields; never a key value.")

    @classmethod
    def of(cls, event: Event) -> EventInfo:
        return cls(
            id=event.id, type=EventType(event.type), created_at=event.created_at, data=event.payload
        )


class EventPage(BaseModel):
    data: builtins.list[EventInfo]
    next_cursor: str | None


_RECORDED = "templateto.events_recorded"


def committed_events(session: Session) -> bool:
    """Whether a just-committed session recorded events: delivery workers in this process use it
    to start at once instead of at their next poll."""
    return bool(session.info.pop(_RECORDED, False))


def record(
    session: Session, account_id: str, type: EventType, data: dict[str, Any], at: datetime
) -> Event:
    """Add an event, and a pending delivery for each live subscription to its type, to the
    caller's transaction."""
    event = Event(
        id=new_id("evt_"), account_id=account_id, type=type.value, payload=data, created_at=at
    )
    session.add(event)
    subscribed = [
        hook_id
        for hook_id, event_types in session.execute(
            select(Hook.id, Hook.event_types)
            .where(Hook.account_id == account_id, Hook.disabled_at.is_(None))
            # A subscription deleted meanwhile would fail this change on its foreign key:
            # deletes of these rows wait until it commits. In id order, as the delivery worker
            # locks them, so the two cannot deadlock.
            .order_by(Hook.id)
            .with_for_update(read=True)
        )
        if type.value in event_types
    ]
    if subscribed:
        session.flush()  # the event row first: deliveries refer to it
        session.execute(
            insert(Delivery),
            [
                {
                    "id": new_id("msg_"),
                    "hook_id": hook_id,
                    "event_id": event.id,
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": at,
                    "created_at": at,
                }
                for hook_id in subscribed
            ],
        )
    session.info[_RECORDED] = True
    return event


class EventLog:
    """The account's events, newest first: a polling source besides webhooks."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def list(self, account_id: str, page: PageQuery, type: EventType | None = None) -> EventPage:
        query = select(Event).where(Event.account_id == account_id)
        if type is not None:
            query = query.where(Event.type == type.value)
        with self._db.transaction() as session:
            rows = builtins.list(session.scalars(newest_first(query, Event, page)))
        cursor = next_cursor(rows, page)
        return EventPage(data=[EventInfo.of(row) for row in rows], next_cursor=cursor)
