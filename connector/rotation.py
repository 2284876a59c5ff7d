"""api_key.rotation_due: recorded when a key becomes due for rolling (its rotate-by time is
within 7 days) and again when it becomes overdue, once each per rotation period.

A rotation period is one value with one rotate-by time: a roll issues a new value, and moving the
deadline (the key's own rotate_by, or the policy's max_age_days) sets a new one; either starts
afresh, so the new deadline is told due and overdue in its turn. What was told is remembered in
the database (:class:`~connector.models.RotationNotice`, keyed by value, deadline and stage) in the
transaction that records the event, so a restart, or several delivery workers looking at once,
never tell it twice. Nothing here rolls a key.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import selectinload

from .api_keys import ApiKeyInfo, Rotation, live_key_rotate_by, rotation
from .clock import Clock
from .db import Database, insert_if_absent
from .events import EventType, record
from .models import ApiKey, KeyPolicy, KeyValue, RotationNotice

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
        with self._db.transaction() as session:
            # Only the columns that decide, of keys with a deadline at all (their own, or their
            # account's maximum age): a look over many keys builds nothing for those not due.
            latest_value = (
                select(func.max(KeyValue.id))
                .where(KeyValue.key_id == ApiKey.id)
                .correlate(ApiKey)
                .scalar_subquery()
            )
            candidates = session.execute(
                select(
                    ApiKey.id,
                    latest_value,
                    ApiKey.rotate_by,
                    func.coalesce(ApiKey.rolled_at, ApiKey.created_at),
                    KeyPolicy.max_age_days,
                )
                .outerjoin(KeyPolicy, KeyPolicy.account_id == ApiKey.account_id)
                .where(
                    ApiKey.deleted_at.is_(None),
                    or_(ApiKey.rotate_by.is_not(None), KeyPolicy.max_age_days.is_not(None)),
                )
            ).all()
            # (value id, deadline, stage) of each key due or overdue, and its policy's age.
            stages: dict[str, tuple[tuple[int, datetime, str], int | None]] = {}
            for key_id, value_id, own, started, max_age_days in candidates:
                deadline = live_key_rotate_by(own, started, max_age_days)
                stage = rotation(deadline, now)
                if deadline is not None and stage is not Rotation.OK:
                    stages[key_id] = ((value_id, deadline, stage.value), max_age_days)
            if not stages:
                return 0
            # Compared here rather than in SQL: notices of other deadlines do not count.
            told = {
                tuple(row)
                for row in session.execute(
                    select(
                        RotationNotice.value_id, RotationNotice.rotate_by, RotationNotice.stage
                    ).where(
                        RotationNotice.value_id.in_({notice[0] for notice, _ in stages.values()})
                    )
                )
            }
            untold = sorted(key_id for key_id, (notice, _) in stages.items() if notice not in told)
            recorded = 0
            # In id order, the order in which every worker takes their notices' locks.
            for key in session.scalars(
                select(ApiKey)
                .where(ApiKey.id.in_(untold))
                .options(selectinload(ApiKey.values))
                .order_by(ApiKey.id)
            ):
                _, max_age_days = stages[key.id]
                info = ApiKeyInfo.of(key, now, max_age_days)
                if info.rotate_by is None or info.rotation is Rotation.OK:
                    continue  # rolled or given a later date since the first query
                first = insert_if_absent(
                    session,
                    RotationNotice,
                    value_id=key.latest_value.id,
                    rotate_by=info.rotate_by,
                    stage=info.rotation.value,
                    sent_at=now,
                )
                if first:
                    data = info.model_dump(mode="json")
                    record(session, key.account_id, EventType.API_KEY_ROTATION_DUE, data, now)
                    recorded += 1
        return recorded

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
