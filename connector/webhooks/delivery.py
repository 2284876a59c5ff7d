"""The delivery worker: leases due deliveries, POSTs them signed, records what happened.

At least once, never lost: a delivery is leased (not removed) while it is being sent, and its
outcome is written after the POST. A worker that dies mid-batch leaves leases that expire, and
another worker (or the same one, restarted) sends those deliveries again, with the same
``webhook-id`` so receivers can drop the duplicate. On PostgreSQL several workers share the
outbox through ``FOR UPDATE SKIP LOCKED``; on SQLite writers take turns.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import urllib3
from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, selectinload

from .. import audit
from ..audit import SERVICE, AuditAction
from ..clock import Clock, iso
from ..db import Database
from ..encryption import StoredSecrets, UnreadableSecret
from ..events import DeliveryStatus, EventInfo, EventType, committed_events, record
from ..models import Delivery, DeliveryAttempt, Hook
from . import signing
from .subscriptions import audit_detail
from .targets import HookTargetRefused, resolve_target

log = logging.getLogger(__name__)

# Delay before each try: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
SCHEDULE_SECONDS = (0, 5, 300, 1_800, 7_200, 18_000, 36_000, 36_000)
JITTER = 0.1
DISABLE_AFTER = timedelta(days=5)
STREAK_GAP = timedelta(days=1)
CONNECT_SECONDS = 5.0
READ_SECONDS = 10.0
MAX_ERROR_CHARS = 500
UNSIGNABLE = (
    "Not sent: the service cannot decrypt this subscription's signing secret (its operator "
    "changed BRIDGE_SECRET_KEY). It is tried again on its schedule."
)
UNTRANSLATABLE = (
    "Not sent: this event's data could not be shaped for the subscription's platform (an event "
    "stored by an earlier release); the service's log has the details."
)
USER_AGENT = "TemplateTo-Bridge-Webhooks/1"
MAX_BATCH = 200
MAX_DRAINED_BYTES = 65_536
EMBEDDED_POLL_SECONDS = 1.0

PayloadShape = Callable[[EventInfo], Any]


def standard_payload(event: EventInfo) -> dict[str, Any]:
    """The core API's payload: the event as ``GET /v1/events`` lists it."""
    return {
        "id": event.id,
        "type": event.type.value,
        "timestamp": iso(event.created_at),
        "data": event.data,
    }


@dataclass(frozen=True)
class Receivers:
    """How a platform's webhook receivers are spoken to."""

    payload: PayloadShape = standard_payload
    # n8n answers 404 once the workflow behind a webhook is deactivated, and only briefly while it
    # starts. A subscription whose deliveries keep getting 404 for NOT_FOUND_GONE_AFTER is gone.
    not_found_means_gone: bool = False


NOT_FOUND_GONE_AFTER = timedelta(minutes=4)


@dataclass(frozen=True)
class _Job:
    delivery_id: str
    hook_id: str
    target_url: str
    # None when it cannot be decrypted: the delivery is not sent, and is tried again later.
    secret: str | None
    body: bytes
    not_found_means_gone: bool
    # Why it cannot be sent at all (the platform no longer offers its event): recorded as a
    # failed attempt, without holding up the rest of the batch.
    unsendable: str | None = None


@dataclass(frozen=True)
class _Outcome:
    job: _Job
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _name(chore: Callable[[], None]) -> str:
    return getattr(chore, "__qualname__", type(chore).__name__)


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        secrets: StoredSecrets,
        *,
        allow_private_targets: bool,
        lease: timedelta = timedelta(seconds=60),
        concurrency: int = 16,
        poll_seconds: float = 0.1,
        receivers: Mapping[str, Receivers],
        chores: Sequence[Callable[[], None]] = (),
        count_outcome: Callable[[str], None] = lambda _: None,
    ) -> None:
        """``receivers``: how each platform's receivers are spoken to, by the platform's name
        (as hooks record it); a hook of any other platform is an error, not an API delivery."""
        self._db = db
        self._receivers = receivers
        self._clock = clock
        self._secrets = secrets
        self._allow_private = allow_private_targets
        self._lease = lease
        # Sized so that a batch of slow (but answering) receivers still finishes by the batch
        # deadline; those that do not answer at all are cut off there.
        slowest = CONNECT_SECONDS + READ_SECONDS
        self._batch_size = max(
            concurrency, min(MAX_BATCH, int(concurrency * lease.total_seconds() / slowest / 2))
        )
        self._poll_seconds = poll_seconds
        self._concurrency = concurrency
        self._batch_seconds = lease.total_seconds() / 2
        self._connections = urllib3.PoolManager(maxsize=concurrency, retries=False)
        self._wake = threading.Event()
        self._stopping = False  # a plain flag: see stop_soon
        self._thread: threading.Thread | None = None
        # Periodic chores of the service (purging expired files, rotation notices) ride on this
        # loop, since it runs wherever deliveries do: in serve, or in separate workers.
        self._chores = tuple(chores)
        # "delivered", "retrying", "failed" (schedule used up) or "gone" (410, or n8n's 404s).
        self._count_outcome = count_outcome
        self._heartbeat = time.monotonic()
        db.after_commit(self._wake_on_events)

    # --- running ------------------------------------------------------------------------

    def run_once(self) -> int:
        """Send one batch of due deliveries; returns how many were attempted."""
        jobs = self._lease_due()
        if not jobs:
            return 0
        # A pool per batch: a receiver that never finishes answering keeps its thread, not
        # this worker. The batch ends by its deadline, well within the lease.
        pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="delivery")
        futures = {pool.submit(self._send, job): job for job in jobs}
        done, late = wait(futures, timeout=self._batch_seconds)
        pool.shutdown(wait=False, cancel_futures=True)
        outcomes = [future.result() for future in done]
        unsent = []
        for future in late:
            if future.cancel():
                unsent.append(futures[future])
            else:
                outcomes.append(self._no_answer(futures[future]))
        self._record(outcomes, unsent)
        return len(outcomes)

    def run_until_stopped(self) -> None:
        while not self._stopping:
            self._heartbeat = time.monotonic()
            self._run_chores()
            try:
                busy = self.run_once()
            except OperationalError as error:
                # Database away, or (SQLite) another writer won the race for the same rows.
                log.warning("delivery batch not taken: %s", type(error.orig).__name__)
                busy = 0
            except Exception:
                # Whatever went wrong with this batch, the loop must live on: its leases expire
                # and the deliveries are sent again.
                log.exception("delivery batch failed; carrying on")
                busy = 0
            if not busy:
                self._wake.wait(self._poll_seconds)
                self._wake.clear()

    def _run_chores(self) -> None:
        for chore in self._chores:
            try:
                chore()
            except Exception:
                # A chore's bug must not stop deliveries, nor the chores after it: each chore
                # logs what it expects and tries again on its next round.
                log.exception("periodic chore %s failed; carrying on", _name(chore))

    def start(self) -> None:
        """Deliver in a background thread of this process (the embedded default). Commits in
        this process wake it at once, so it looks for other work (retries falling due, events
        of processes without a delivery thread) only every ``EMBEDDED_POLL_SECONDS``: polling
        ten times a second would cost a web worker CPU that its requests need."""
        self._poll_seconds = max(self._poll_seconds, EMBEDDED_POLL_SECONDS)
        self._thread = threading.Thread(
            target=self.run_until_stopped, name="delivery-worker", daemon=True
        )
        self._thread.start()

    def health(self) -> str:
        """For readiness: "ok" while this process's delivery thread goes round its loop."""
        if self._thread is None:
            return "separate workers"
        # A batch may take up to its deadline plus one last answer before the loop comes round.
        silent_for = time.monotonic() - self._heartbeat
        if not self._thread.is_alive() or silent_for > self._batch_seconds + READ_SECONDS + 30:
            return f"stalled (no heartbeat for {silent_for:.0f} s)"
        return "ok"

    def stop_soon(self) -> None:
        """Finish the batch in hand, then return from :meth:`run_until_stopped` (within
        ``poll_seconds`` when idle). Safe in a signal handler: it takes no lock, since the
        handler runs on the loop's own thread, which may hold the lock it would wait for."""
        self._stopping = True

    def stop(self) -> None:
        self.stop_soon()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self._batch_seconds + READ_SECONDS)
        self._connections.clear()

    def _wake_on_events(self, session: Session) -> None:
        if committed_events(session):
            self._wake.set()

    # --- one batch ----------------------------------------------------------------------

    def _lease_due(self) -> list[_Job]:
        now = self._clock.now()
        free = or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now)
        due = (
            select(Delivery.id)
            .where(
                Delivery.status == DeliveryStatus.PENDING.value,
                Delivery.next_attempt_at <= now,
                free,
            )
            .order_by(Delivery.next_attempt_at)
            .limit(self._batch_size)
            .with_for_update(skip_locked=True)
        )
        with self._db.transaction() as session:
            # One statement that re-checks the lease: on SQLite (no SKIP LOCKED, transactions
            # that start as readers) two workers can pick the same rows, but only one of them
            # updates each; RETURNING says which.
            ids = session.scalars(
                update(Delivery)
                .where(Delivery.id.in_(due.scalar_subquery()), free)
                .values(lease_until=now + self._lease)
                .returning(Delivery.id)
                .execution_options(synchronize_session=False)
            ).all()
            if not ids:
                return []
            deliveries = session.scalars(
                select(Delivery)
                .where(Delivery.id.in_(ids))
                .options(selectinload(Delivery.hook), selectinload(Delivery.event))
            )
            return [self._job(delivery) for delivery in deliveries]

    def _job(self, delivery: Delivery) -> _Job:
        platform = delivery.hook.platform
        if platform not in self._receivers:
            raise LookupError(
                f"Hook {delivery.hook_id} is for the platform {platform!r}, which this process "
                f"was not assembled with ({', '.join(self._receivers)})."
            )
        receivers = self._receivers[platform]
        unsendable: str | None = None
        try:
            payload = receivers.payload(EventInfo.of(delivery.event))
        except LookupError as error:  # a subscription an earlier release allowed
            payload, unsendable = {}, f"Not sent: {error} Subscribe again to a trigger offered."
        except Exception:
            # An event stored by an earlier release in a shape this one cannot translate: it
            # fails alone, rather than failing every batch it is leased in, and every delivery
            # of every account queued behind it.
            log.exception(
                "an event's payload could not be built", extra={"event": delivery.event_id}
            )
            payload, unsendable = {}, UNTRANSLATABLE
        body = json.dumps(payload, separators=(",", ":"))
        try:
            secret: str | None = self._secrets.decrypt(delivery.hook.encrypted_secret)
        except UnreadableSecret:
            log.error(
                "a webhook signing secret cannot be decrypted: BRIDGE_SECRET_KEY changed without "
                "BRIDGE_SECRET_KEY_PREVIOUS set to the key before it",
                extra={"hook_id": delivery.hook_id},
            )
            secret = None
        return _Job(
            delivery_id=delivery.id,
            hook_id=delivery.hook_id,
            target_url=delivery.hook.target_url,
            secret=secret,
            body=body.encode("utf-8"),
            not_found_means_gone=receivers.not_found_means_gone,
            unsendable=unsendable,
        )

    def _send(self, job: _Job) -> _Outcome:
        attempted_at = self._clock.now()
        started = time.monotonic()

        def outcome(status_code: int | None, error: str | None) -> _Outcome:
            duration_ms = int((time.monotonic() - started) * 1000)
            return _Outcome(job, attempted_at, status_code, error, duration_ms)

        if job.unsendable is not None:
            return outcome(None, job.unsendable)
        if job.secret is None:
            return outcome(None, UNSIGNABLE)
        try:
            target = resolve_target(job.target_url, allow_private=self._allow_private)
            # Connect to the address just checked, naming the host for TLS and HTTP.
            tls = {"server_hostname": target.host, "assert_hostname": target.host}
            pool = self._connections.connection_from_host(
                target.address,
                target.port,
                target.scheme,
                pool_kwargs=tls if target.scheme == "https" else None,
            )
            response = pool.urlopen(
                "POST",
                target.path,
                body=job.body,
                headers={
                    "Host": target.host_header,
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                    **signing.headers(
                        job.secret, job.delivery_id, int(self._clock.time()), job.body
                    ),
                },
                redirect=False,
                assert_same_host=False,
                timeout=urllib3.Timeout(connect=CONNECT_SECONDS, read=READ_SECONDS),
                preload_content=False,
            )
        except HookTargetRefused as error:
            return outcome(None, error.message)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            return outcome(None, f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS])
        # Only the status matters: a short body is drained so the connection can be reused,
        # anything else is not read at all.
        if (response.length_remaining or 0) <= MAX_DRAINED_BYTES:
            with contextlib.suppress(urllib3.exceptions.HTTPError, OSError):
                response.drain_conn()
        response.release_conn()
        return outcome(response.status, None)

    def _no_answer(self, job: _Job) -> _Outcome:
        return _Outcome(
            job,
            self._clock.now(),
            None,
            f"no complete answer within {self._batch_seconds:g} seconds",
            int(self._batch_seconds * 1000),
        )

    def _record(self, outcomes: list[_Outcome], unsent: list[_Job]) -> None:
        for outcome in self._write(outcomes, unsent):
            self._count_outcome(outcome)

    def _write(self, outcomes: list[_Outcome], unsent: list[_Job]) -> list[str]:
        """Write what became of each delivery; returns the outcomes written, to be counted."""
        counted: list[str] = []
        now = self._clock.now()
        with self._db.transaction() as session:
            # Hooks before their deliveries, each in id order: the order every other writer
            # (deleting a hook cascades to its deliveries; fan-out share-locks hooks, then adds
            # deliveries) takes them in, so none of them can deadlock with this one.
            hooks = {
                h.id: h
                for h in session.scalars(
                    select(Hook)
                    .where(Hook.id.in_({o.job.hook_id for o in outcomes}))
                    .order_by(Hook.id)
                    .with_for_update()
                )
            }
            if unsent:
                session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_([job.delivery_id for job in unsent]))
                    .values(lease_until=None)
                )
            if not outcomes:
                return counted
            deliveries = {
                d.id: d
                for d in session.scalars(
                    select(Delivery)
                    .where(Delivery.id.in_([o.job.delivery_id for o in outcomes]))
                    .order_by(Delivery.id)
                    .with_for_update()
                )
            }
            attempts: list[dict[str, Any]] = []
            gone: set[str] = set()
            for result in outcomes:
                delivery = deliveries.get(result.job.delivery_id)
                hook = hooks.get(result.job.hook_id)
                if delivery is None or hook is None or hook.id in gone:
                    continue  # the subscription was deleted meanwhile (410, or by its owner)
                attempts.append(
                    {
                        "delivery_id": delivery.id,
                        "attempted_at": result.attempted_at,
                        "status_code": result.status_code,
                        "error": result.error,
                        "duration_ms": result.duration_ms,
                    }
                )
                delivery.attempts += 1
                delivery.lease_until = None
                if result.succeeded:
                    delivery.status = DeliveryStatus.SUCCEEDED.value
                    delivery.next_attempt_at = None
                    hook.failing_since = None
                    counted.append("delivered")
                elif result.status_code == 410 or self._not_found_for_long(result, hook, now):
                    # 410 is the REST hooks convention Zapier follows: the receiver is gone.
                    gone.add(hook.id)
                    attempts.pop()
                    counted.append("gone")
                    detail = {**audit_detail(hook), "receiver_status": result.status_code}
                    audit.record(
                        session,
                        hook.account_id,
                        AuditAction.HOOK_DELETED,
                        hook.id,
                        SERVICE,
                        now,
                        detail,
                    )
                else:
                    self._failed(session, delivery, hook, now)
                    failed = delivery.status == DeliveryStatus.FAILED.value
                    counted.append("failed" if failed else "retrying")
            if attempts:
                session.execute(insert(DeliveryAttempt), attempts)
            if gone:
                session.flush()
                session.execute(delete(Hook).where(Hook.id.in_(gone)))
        return counted

    @staticmethod
    def _not_found_for_long(result: _Outcome, hook: Hook, now: datetime) -> bool:
        return (
            result.status_code == 404
            and result.job.not_found_means_gone
            and hook.failing_since is not None
            and now - hook.failing_since >= NOT_FOUND_GONE_AFTER
        )

    def _failed(self, session: Session, delivery: Delivery, hook: Hook, now: datetime) -> None:
        if delivery.attempts < len(SCHEDULE_SECONDS):
            delay = SCHEDULE_SECONDS[delivery.attempts] * random.uniform(1 - JITTER, 1 + JITTER)
            delivery.next_attempt_at = now + timedelta(seconds=delay)
        else:
            delivery.status = DeliveryStatus.FAILED.value
            delivery.next_attempt_at = None
        # A streak of failures is broken by a success, or by a day without any attempt: a hook
        # that failed once, then heard nothing for days, has not been failing all that time.
        if (
            hook.failing_since is None
            or hook.last_failed_at is None
            or now - hook.last_failed_at > STREAK_GAP
        ):
            hook.failing_since = now
        hook.last_failed_at = now
        if hook.disabled_at is None and now - hook.failing_since >= DISABLE_AFTER:
            hook.disabled_at = now
            session.execute(
                update(Delivery)
                .where(Delivery.hook_id == hook.id, Delivery.status == DeliveryStatus.PENDING.value)
                .values(status=DeliveryStatus.FAILED.value, next_attempt_at=None)
            )
            record(
                session,
                hook.account_id,
                EventType.HOOK_DISABLED,
                {
                    "hook_id": hook.id,
                    "target_url": hook.target_url,
                    "failing_since": iso(hook.failing_since),
                    "disabled_at": iso(now),
                },
                now,
            )
            audit.record(
                session,
                hook.account_id,
                AuditAction.HOOK_DISABLED,
                hook.id,
                SERVICE,
                now,
                {**audit_detail(hook), "failing_since": iso(hook.failing_since)},
            )
