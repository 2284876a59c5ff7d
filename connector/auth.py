"""Authenticate an ``X-Api-Key`` value: a :class:`Principal`, or an :class:`AuthenticationFailed`
whose class says why, with a message that says what happened and what to do.

The path of a known value is one SHA-256, one shared-memory read and one dict lookup. A cache
miss checks the value's shape and checksum with no I/O, then does one indexed lookup by SHA-256.
A roll or delete empties every process's cache before it answers (:mod:`connector.revocations`
says how), so an old value is refused by the first request sent after the answer.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from cachetools import TTLCache
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from . import keys
from .api_keys import RECOGNISABLE_FOR, Permission
from .clients import Client, RefusalRepeats, classify
from .clock import Clock, format_time, iso
from .db import Database
from .errors import (
    ApiKeyChecksumMismatch,
    ApiKeyDeleted,
    ApiKeyInQuery,
    ApiKeyMalformed,
    ApiKeyMissing,
    ApiKeyRolled,
    ApiKeyUnknown,
    AuthenticationFailed,
)
from .models import Account, ApiKey, AuthGeneration, KeyValue
from .revocations import RevocationSignal
from .usage import UsageRecorder

# The safety net behind the revocation signal and listener: how often a process serving cached
# keys also reads the database's generation counter.
POLL_SECONDS = 5.0
IDENTIFY_PER_SECOND = 20
LAST_USED_EVERY_SECONDS = 60.0
# Even without a roll, a cached answer is re-read now and then, so that e.g. a value past its
# 90 recognisable days stops being described as rolled.
REFRESH_SECONDS = 600.0
MAX_CACHED = 50_000
MAX_PATH_CHARS = 300
QUERY_PARAMETER_NAMES = frozenset(
    {"api_key", "apikey", "api-key", "x-api-key", "x_api_key", "key", "token", "access_token"}
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: an account, through one of its keys."""

    account_id: str
    account_name: str
    key_id: str
    key_name: str
    key_hint: str
    permission: Permission
    key_created_at: datetime
    key_rolled_at: datetime | None
    # Set when the request used an old value during its roll's grace period.
    grace_until: datetime | None = None

    @property
    def in_grace_period(self) -> bool:
        return self.grace_until is not None

    @property
    def label(self) -> str:
        """The connection label: account and key, and when a rolled value stops working."""
        label = f"{self.account_name} · {self.key_name}"
        if self.grace_until is not None:
            label += f" (rolled: this value stops working {format_time(self.grace_until)})"
        return label

    @property
    def is_admin(self) -> bool:
        return self.permission is Permission.ADMIN


@dataclass(slots=True)
class _Entry:
    """What a known value means, cached by its SHA-256."""

    key_id: str
    value_id: int
    principal: Principal | None
    failure: AuthenticationFailed | None
    # "rolled", "deleted" or "grace_period" when uses of this value go into the failure report.
    report_as: str | None
    valid_until: float
    last_used_noted: float = float("-inf")


def key_in_query(query: MultiDict[str, str]) -> AuthenticationFailed | None:
    """A refusal when a URL's query string carries what looks like an API key."""
    for name, value in query.items(multi=True):
        if name.lower() in QUERY_PARAMETER_NAMES or keys.PREFIX in name or keys.PREFIX in value:
            return ApiKeyInQuery(
                f"API keys are not accepted in the URL (query parameter {name!r}), where they "
                "end up in logs and browser history. Send the key in the X-Api-Key header, "
                "and consider rolling this key since it has been exposed.",
                details={"parameter": name},
            )
    return None


class Authenticator:
    def __init__(
        self,
        db: Database,
        usage: UsageRecorder,
        repeats: RefusalRepeats,
        signal: RevocationSignal,
        clock: Clock | None = None,
        *,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._db = db
        self._signal = signal
        self._signal_seen = signal.read()
        self._poll_seconds = poll_seconds
        # Values over an abuse limit that turned out unknown, and how many such values this
        # process may still look up this second: a spray of guesses costs bounded lookups.
        self._unknown_limited: TTLCache[str, bool] = TTLCache(maxsize=10_000, ttl=REFRESH_SECONDS)
        self._identify_second, self._identified = 0, 0
        self._usage = usage
        self._clock = clock or Clock()
        self._cache: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._epoch = 0
        self._generation: int | None = None
        self._next_poll = 0.0
        self._repeats = repeats

    def authenticate(
        self, presented: str | None, *, user_agent: str = "", path: str = ""
    ) -> Principal:
        """Who ``presented`` (the raw X-Api-Key header, None when absent) acts as.
        Raises an :class:`AuthenticationFailed` naming the reason."""
        client = classify(user_agent)
        digest = keys.fingerprint(presented) if presented is not None else ""
        try:
            entry = self._entry(presented, digest)
        except AuthenticationFailed as refusal:
            refusal.repeat = self._repeats.is_repeat(client, digest, path)
            raise
        repeat = entry.failure is not None and self._repeats.is_repeat(
            client, digest, path, shared=entry.report_as is not None
        )
        if not repeat:
            self._note_old_value(entry, client, path)
        if entry.failure is not None:
            # A fresh exception each time: a shared instance would collect tracebacks across
            # requests and threads.
            failure = entry.failure
            fresh = type(failure)(failure.message, details=failure.details)
            fresh.repeat = repeat
            raise fresh
        now = self._clock.time()
        if now - entry.last_used_noted >= LAST_USED_EVERY_SECONDS:
            entry.last_used_noted = now
            self._usage.note_used(entry.key_id, self._clock.now())
        assert entry.principal is not None
        return entry.principal

    def note_limited(self, presented: str | None, *, user_agent: str, path: str) -> None:
        """Count a use of a retired value that an abuse limit answered before authentication,
        so that the failure report shows every call. Known from this process's cache (a
        revocation keeps refusals there); a value not known yet is looked up once, within
        ``IDENTIFY_PER_SECOND`` lookups a second, and remembered either way."""
        if not presented:
            return
        digest = keys.fingerprint(presented)
        entry = self._cache.get(digest)
        if entry is None and digest not in self._unknown_limited and self._may_identify():
            try:
                entry = self._load(presented, digest)
            except AuthenticationFailed:
                self._unknown_limited[digest] = True
                return
        if entry is not None:
            self._note_old_value(entry, classify(user_agent), path)

    def _may_identify(self) -> bool:
        second = int(time.monotonic())
        with self._lock:
            if second != self._identify_second:
                self._identify_second, self._identified = second, 0
            self._identified += 1
            return self._identified <= IDENTIFY_PER_SECOND

    def _note_old_value(self, entry: _Entry, client: Client, path: str) -> None:
        reason = entry.report_as
        if reason is None:
            return
        grace_until = entry.principal.grace_until if entry.principal is not None else None
        if grace_until is not None and grace_until <= self._clock.now():
            reason = "rolled"  # a cached grace-period answer, met by a limit after it ended
        self._usage.note_old_value(
            value_id=entry.value_id,
            key_id=entry.key_id,
            reason=reason,
            client=client,
            path=keys.printable(path, MAX_PATH_CHARS),
            at=self._clock.now(),
        )

    def vouches_for(self, presented: str | None) -> bool:
        """Whether ``presented`` is a working key this process checked a moment ago: known
        without a lookup, so an address over its refusal limit still serves its good keys."""
        if not presented:
            return False
        entry = self._cache.get(keys.fingerprint(presented))
        return (
            entry is not None
            and entry.principal is not None
            and entry.failure is None
            and self._clock.time() < entry.valid_until
        )

    def expects_repeat(self, presented: str | None, *, user_agent: str, path: str) -> bool:
        """Whether this request would be a client's automatic repeat of a refusal a moment ago:
        the same attempt, which a limit that let the first through lets through too."""
        digest = keys.fingerprint(presented) if presented is not None else ""
        return self._repeats.expects(classify(user_agent), digest, path)

    def _entry(self, presented: str | None, digest: str) -> _Entry:
        if presented is None:
            raise ApiKeyMissing(
                "No API key was sent. Send your TemplateTo API key in the X-Api-Key header.",
            )
        if self._signal.read() != self._signal_seen:
            self._catch_up()
        entry = self._cache.get(digest)
        if entry is not None and time.monotonic() >= self._next_poll:
            self._poll_generation()
            entry = self._cache.get(digest)
        if entry is None or self._clock.time() >= entry.valid_until:
            entry = self._load(presented, digest)
        return entry

    def _catch_up(self) -> None:
        """Forget the keys revoked since this process last looked. The count is marked seen
        only once they are forgotten, under the lock: a thread that finds it unchanged can
        trust the cache."""
        with self._lock:
            count, key_ids = self._signal.revoked_since(self._signal_seen)
            if count != self._signal_seen:
                self._forget(key_ids)
                self._signal_seen = count

    def forget(self, key_ids: frozenset[str] | None) -> None:
        """These keys (None: every key) were rolled or deleted: their cached answers are re-read
        before they are used again."""
        with self._lock:
            self._forget(key_ids)

    def _forget(self, key_ids: frozenset[str] | None) -> None:
        # Refusals stay, re-read before they answer, for note_limited: a revocation never
        # makes a refused value work again.
        kept = {}
        for digest, entry in self._cache.items():
            if key_ids is not None and entry.key_id not in key_ids:
                kept[digest] = entry
            elif entry.principal is None:
                entry.valid_until = float("-inf")
                kept[digest] = entry
        self._cache = kept
        self._epoch += 1

    def _poll_generation(self) -> None:
        # Claimed first, so that the threads finding the poll due at once do not all query.
        self._next_poll = time.monotonic() + self._poll_seconds
        with self._db.transaction() as session:
            generation = session.scalar(
                select(AuthGeneration.generation).where(AuthGeneration.id == 1)
            )
        reattached = self._signal.reattach_if_replaced()
        with self._lock:
            changed = generation != self._generation or reattached
            self._generation = generation
            if reattached:
                self._signal_seen = self._signal.read()
            if changed:
                self._forget(None)

    def _load(self, presented: str, digest: str) -> _Entry:
        problem = keys.diagnose(presented)
        if problem is keys.FormatProblem.EMPTY:
            raise ApiKeyMissing(
                "The X-Api-Key header is empty. Put your TemplateTo API key in it.",
            )
        if problem is not None:
            raise ApiKeyMalformed(
                f"This is not a valid TemplateTo API key: {problem.value}.",
                details={"problem": problem.code},
            )
        if not keys.checksum_matches(presented):
            raise ApiKeyChecksumMismatch(
                "This API key looks mistyped or truncated: its checksum does not match. "
                "Copy the key again, in full, from the API keys page.",
            )
        if self._generation is None:
            # Learn the generation before the first lookup, so a roll racing with it is seen.
            self._poll_generation()
        epoch = self._epoch
        with self._db.transaction() as session:
            row = session.execute(
                select(KeyValue, ApiKey, Account)
                .join(ApiKey, KeyValue.key_id == ApiKey.id)
                .join(Account, ApiKey.account_id == Account.id)
                .where(KeyValue.fingerprint == digest)
            ).one_or_none()
        if row is None:
            raise self._unknown()
        entry = self._describe(row.KeyValue, row.ApiKey, row.Account)
        self._remember(digest, epoch, entry)
        return entry

    def _remember(self, digest: str, epoch: int, entry: _Entry) -> None:
        with self._lock:
            # Not when a revocation came in meanwhile: the entry may describe the state before.
            if self._epoch == epoch:
                if len(self._cache) >= MAX_CACHED:
                    self._cache.clear()
                self._cache[digest] = entry

    def _describe(self, value: KeyValue, key: ApiKey, account: Account) -> _Entry:
        now = self._clock.now()
        refresh_at = now.timestamp() + REFRESH_SECONDS

        def entry(**fields: object) -> _Entry:
            return _Entry(key_id=key.id, value_id=value.id, **fields)  # type: ignore[arg-type]

        def principal(grace_until: datetime | None = None) -> Principal:
            return Principal(
                account_id=account.id,
                account_name=account.name,
                key_id=key.id,
                key_name=key.name,
                key_hint=keys.display_hint(value.last4),
                permission=Permission(key.permission),
                key_created_at=key.created_at,
                key_rolled_at=key.rolled_at,
                grace_until=grace_until,
            )

        if key.deleted_at is not None:
            if now - key.deleted_at >= RECOGNISABLE_FOR:
                raise self._unknown()
            failure: AuthenticationFailed = ApiKeyDeleted(
                f"This API key value belonged to the key {key.name!r}, which was deleted on "
                f"{format_time(key.deleted_at)}. Integrations using it cannot make requests: "
                "create a new key on the API keys page and update the integration with it.",
                details={"key_id": key.id, "key_name": key.name, "deleted_at": iso(key.deleted_at)},
            )
            return entry(
                principal=None, failure=failure, report_as="deleted", valid_until=refresh_at
            )
        if value.retired_at is None:
            return entry(
                principal=principal(), failure=None, report_as=None, valid_until=refresh_at
            )
        if value.works_until is not None and now < value.works_until:
            return entry(
                principal=principal(grace_until=value.works_until),
                failure=None,
                report_as="grace_period",
                valid_until=min(refresh_at, value.works_until.timestamp()),
            )
        if now - value.retired_at >= RECOGNISABLE_FOR:
            raise self._unknown()
        grace_note = (
            f" Its grace period ended on {format_time(value.works_until)}."
            if value.works_until is not None and value.works_until > value.retired_at
            else ""
        )
        failure = ApiKeyRolled(
            f"This API key value belonged to the key {key.name!r}, which was rolled on "
            f"{format_time(value.retired_at)}.{grace_note} Update the integration with the "
            "key's new value; if nobody kept it, roll the key again on the API keys page.",
            details={"key_id": key.id, "key_name": key.name, "rolled_at": iso(value.retired_at)},
        )
        return entry(principal=None, failure=failure, report_as="rolled", valid_until=refresh_at)

    @staticmethod
    def _unknown() -> ApiKeyUnknown:
        return ApiKeyUnknown(
            "This API key is not known here: it was never issued by this TemplateTo "
            "deployment, or it was deleted more than 90 days ago. Check that the integration "
            "uses the right server address and a key copied from its API keys page.",
        )


def grace_warning(principal: Principal) -> dict[str, str]:
    """Response headers for a request made with an old value during its grace period.
    ASCII only (key names may not be), so they name the key by id."""
    if principal.grace_until is None:
        return {}
    until = principal.grace_until
    return {
        "X-Api-Key-Warning": (
            f"This value of API key {principal.key_id} was rolled and stops working at "
            f"{until.strftime('%Y-%m-%dT%H:%M:%SZ')}. Update the integration with the new value."
        ),
        "Sunset": until.strftime("%a, %d %b %Y %H:%M:%S GMT"),
    }
