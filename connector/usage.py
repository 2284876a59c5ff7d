"""Key usage written in aggregate: last-used times and uses of retired values.

Authentication runs on every request and must not write on every request. Uses are counted in
memory and flushed by a timer a moment later in one transaction: a flood of requests with a
rolled value becomes one upsert per (value, reason, client) per flush, not one write per request.
"""

from __future__ import annotations

import enum
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from . import keys
from .clients import Client
from .clock import iso
from .db import Database
from .events import EventType, record
from .models import ApiKey, KeyFailure, KeyValue, OldValueAlert

log = logging.getLogger(__name__)

FLUSH_DELAY_SECONDS = 1.0
OLD_VALUE_EVENT_EVERY = timedelta(hours=1)


class Situation(enum.StrEnum):
    """What api_key.old_value_used tells: each is announced on its own."""

    USED_DURING_GRACE_PERIOD = "used_during_grace_period"
    REFUSED_AFTER_ROLL = "refused_after_roll"
    USED_AFTER_DELETE = "used_after_delete"


# The failure report's reasons, and the situation each stands for.
SITUATION_OF_REASON = {
    "grace_period": Situation.USED_DURING_GRACE_PERIOD,
    "rolled": Situation.REFUSED_AFTER_ROLL,
    "deleted": Situation.USED_AFTER_DELETE,
}


@dataclass
class _Tally:
    key_id: str
    count: int
    first_seen_at: datetime
    last_seen_at: datetime
    last_path: str


_TallyKey = tuple[int, str, str]  # (value id, reason, client)


class UsageRecorder:
    """Buffers usage and writes it ``flush_delay`` seconds after the first unwritten use."""

    def __init__(self, db: Database, flush_delay: float = FLUSH_DELAY_SECONDS) -> None:
        self._db = db
        self._flush_delay = flush_delay
        self._lock = threading.Lock()
        # Held for a whole flush: a flush returns only once every use noted before it is written,
        # also those a timer's flush took a moment earlier and is still writing.
        self._flushing = threading.Lock()
        self._last_used: dict[str, datetime] = {}
        self._tallies: dict[_TallyKey, _Tally] = {}
        self._timer: threading.Timer | None = None

    def note_used(self, key_id: str, at: datetime) -> None:
        with self._lock:
            self._last_used[key_id] = at
            self._schedule()

    def note_old_value(
        self, *, value_id: int, key_id: str, reason: str, client: Client, path: str, at: datetime
    ) -> None:
        tally_key = (value_id, reason, str(client))
        with self._lock:
            tally = self._tallies.get(tally_key)
            if tally is None:
                self._tallies[tally_key] = _Tally(key_id, 1, at, at, path)
            else:
                tally.count += 1
                tally.last_seen_at = max(tally.last_seen_at, at)
                tally.last_path = path
            self._schedule()

    def flush(self) -> None:
        """Write everything buffered now. On a database error the uses go back into the buffer
        and are written by the next flush."""
        with self._flushing:
            self._write_buffered()

    def _write_buffered(self) -> None:
        with self._lock:
            last_used, self._last_used = self._last_used, {}
            tallies, self._tallies = self._tallies, {}
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if not last_used and not tallies:
            return
        try:
            with self._db.transaction() as session:
                for key_id, at in last_used.items():
                    session.execute(
                        update(ApiKey)
                        .where(
                            ApiKey.id == key_id,
                            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < at),
                        )
                        .values(last_used_at=at)
                    )
                for tally_key, tally in tallies.items():
                    self._upsert(session, tally_key, tally)
                for tally_key, tally in tallies.items():
                    self._announce(session, tally_key, tally)
        except OperationalError:
            log.warning("database unavailable; key usage kept for the next flush")
            self._restore(last_used, tallies)
        except SQLAlchemyError:
            # Not transient: retrying the same batch would fail forever and block all later ones.
            log.exception("could not write key usage; this batch is dropped")

    def close(self) -> None:
        self.flush()

    def _schedule(self) -> None:
        if self._timer is None:
            self._timer = threading.Timer(self._flush_delay, self.flush)
            self._timer.daemon = True
            self._timer.start()

    def _restore(self, last_used: dict[str, datetime], tallies: dict[_TallyKey, _Tally]) -> None:
        with self._lock:
            for key_id, at in last_used.items():
                self._last_used[key_id] = max(at, self._last_used.get(key_id, at))
            for tally_key, tally in tallies.items():
                newer = self._tallies.get(tally_key)
                if newer is not None:
                    tally.count += newer.count
                    tally.last_seen_at = newer.last_seen_at
                    tally.last_path = newer.last_path
                self._tallies[tally_key] = tally
            self._schedule()

    @staticmethod
    def _announce(session: Session, tally_key: _TallyKey, tally: _Tally) -> None:
        """Record api_key.old_value_used when a key's old values meet a new situation, and at
        most once an hour per key for the same situation, so a failing Zap cannot flood
        anyone while the first real refusal after a grace period is never held back."""
        value_id, reason, client = tally_key
        situation = SITUATION_OF_REASON[reason]
        at = tally.last_seen_at
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        insert = dialect.insert(OldValueAlert).values(
            key_id=tally.key_id, situation=situation, recorded_at=at
        )
        # RETURNING, not the row count, which psycopg leaves at -1 for this statement.
        claimed = session.scalar(
            insert.on_conflict_do_update(
                index_elements=["key_id", "situation"],
                set_={"recorded_at": at},
                where=OldValueAlert.recorded_at <= at - OLD_VALUE_EVENT_EVERY,
            ).returning(OldValueAlert.key_id)
        )
        if claimed is None:
            return
        key = session.get_one(ApiKey, tally.key_id)
        value = session.get_one(KeyValue, value_id)
        failure = session.scalars(
            select(KeyFailure).where(
                KeyFailure.value_id == value_id,
                KeyFailure.reason == reason,
                KeyFailure.client == client,
            )
        ).one()
        record(
            session,
            key.account_id,
            EventType.API_KEY_OLD_VALUE_USED,
            {
                "key_id": key.id,
                "key_name": key.name,
                "value_hint": keys.display_hint(value.last4),
                "situation": situation.value,
                "reason": reason,
                "rolled_at": iso(value.retired_at) if value.retired_at else None,
                "works_until": iso(value.works_until) if value.works_until else None,
                "deleted_at": iso(key.deleted_at) if key.deleted_at else None,
                "client": client,
                "failure_count": failure.count,
                "first_seen_at": iso(failure.first_seen_at),
                "last_seen_at": iso(failure.last_seen_at),
                "last_path": failure.last_path,
            },
            at,
        )

    @staticmethod
    def _upsert(session: Session, tally_key: _TallyKey, tally: _Tally) -> None:
        value_id, reason, client = tally_key
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        insert = dialect.insert(KeyFailure).values(
            key_id=tally.key_id,
            value_id=value_id,
            reason=reason,
            client=client,
            count=tally.count,
            first_seen_at=tally.first_seen_at,
            last_seen_at=tally.last_seen_at,
            last_path=tally.last_path,
        )
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["value_id", "reason", "client"],
                set_={
                    "count": KeyFailure.count + insert.excluded.count,
                    "last_seen_at": insert.excluded.last_seen_at,
                    "last_path": insert.excluded.last_path,
                },
            )
        )
