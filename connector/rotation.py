"""api_key.rotation_due: recorded when a key becomes due for rolling (its rotate-by time is
within 7 days) and again when it becomes overdue, once each per rotation period.

A rotation period is the life of one value: a roll issues a new value, and so starts afresh. What
was told is remembered in the database (:class:`~connector.models.RotationNotice`, keyed by value
and stage) in the transaction that records the event, so a restart, or several delivery workers
looking at once, never tell it twice. Nothing here rolls a key.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import selectinload

from .api_keys import ApiKeyInfo, Rotation
from .clock import Clock
from .db import Database, insert_if_absent
from .events import EventType, record
from .models import ApiKey, KeyPolicy, RotationNotice

log = logging.getLogger(__name__)

# The delivery worker's loop looks this often: a key that becomes due is told within a minute.
CHECK_EVERY = timedelta(seconds=30)


class RotationWatch:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._next_check = clock.now()

    def tell_due_keys(self) -> int:
        """Record api_key.rotation_due for each live key that is due or overdue and has not been
        told so in its current rotation period; returns how many were recorded."""
        now = self._clock.now()
        told = 0
        with self._db.transaction() as session:
            # Only keys that have a deadline at all: their own, or their account's maximum age.
            # In id order, the order in which every worker takes their notices' locks.
            candidates = session.execute(
                select(ApiKey, KeyPolicy.max_age_days)
                .outerjoin(KeyPolicy, KeyPolicy.account_id == ApiKey.account_id)
                .where(
                    ApiKey.deleted_at.is_(None),
                    or_(ApiKey.rotate_by.is_not(None), KeyPolicy.max_age_days.is_not(None)),
                )
                .options(selectinload(ApiKey.values))
                .order_by(ApiKey.id)
            ).all()
            for key, max_age_days in candidates:
                info = ApiKeyInfo.of(key, now, max_age_days)
                if info.rotation is Rotation.OK:
                    continue
                first = insert_if_absent(
                    session,
                    RotationNotice,
                    value_id=key.latest_value.id,
                    stage=info.rotation.value,
                    sent_at=now,
                )
                if first:
                    data = info.model_dump(mode="json")
                    record(session, key.account_id, EventType.API_KEY_ROTATION_DUE, data, now)
                    told += 1
        return told

    def housekeeping(self) -> None:
        """Look for keys due at most every ``CHECK_EVERY``; run by the delivery worker's loop.
        Best effort: a failure is logged and tried again next time."""
        now = self._clock.now()
        if now < self._next_check:
            return
        self._next_check = now + CHECK_EVERY
        try:
            self.tell_due_keys()
        except SQLAlchemyError:
            log.exception("looking for keys due for rotation failed; trying again later")
