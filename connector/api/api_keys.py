"""``/v1/api-keys``: manage an account's keys through the API. Admin keys only."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from flask import request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from .. import keys
from ..api_keys import (
    ApiKeyInfo,
    FailureReport,
    GraceSeconds,
    IssuedApiKey,
    KeyName,
    Permission,
    Rotation,
)
from ..errors import MalformedJson
from ..leaks import LeakOutcome, LeakSource
from ..services import services
from .security import key_protected_blueprint, request_actor, require_admin

blueprint = key_protected_blueprint(
    "api_keys", __name__, "/v1/api-keys", "API keys", "Admin keys only."
)


class KeyPath(BaseModel):
    key_id: str


class ListQuery(BaseModel):
    include_deleted: bool = Field(default=False, description="Also list deleted keys.")
    rotation: str | None = Field(
        default=None,
        description="Only keys in these rotation states, comma-separated: ok, due, overdue "
        "(e.g. due,overdue).",
    )

    @field_validator("rotation")
    @classmethod
    def _known_states(cls, value: str | None) -> str | None:
        if value is None:
            return None
        unknown = [part for part in value.split(",") if part.strip() not in set(Rotation)]
        if unknown:
            raise PydanticCustomError(
                "rotation_filter",
                "Unknown rotation state {unknown}: use ok, due or overdue, separated by commas "
                "(e.g. due,overdue)",
                {"unknown": ", ".join(repr(part) for part in unknown)},
            )
        return value

    def rotation_states(self) -> set[Rotation] | None:
        if self.rotation is None:
            return None
        return {Rotation(part.strip()) for part in self.rotation.split(",")}


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: KeyName
    permission: Permission = Permission.STANDARD


# Any rotate-by time anyone means; the edges of what a date holds would overflow when turned
# to UTC or when the 7 days before it are counted.
EARLIEST_ROTATE_BY = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_ROTATE_BY = datetime(9999, 1, 1, tzinfo=UTC)


class KeyChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rotate_by: AwareDatetime | None = Field(
        description="When this key is to be rolled, overriding the key policy's max_age_days: "
        "an ISO 8601 time with its zone (2027-03-01T09:00:00Z), from 1970 to 9998; null to "
        "follow the policy again. A roll clears it.",
    )

    @field_validator("rotate_by", mode="before")
    @classmethod
    def _iso_text(cls, value: object) -> object:
        # Lax parsing would take a number as seconds since 1970: 90 (days, meant) is refused.
        if value is not None and not isinstance(value, str):
            raise PydanticCustomError(
                "rotate_by_text", "Send an ISO 8601 time as a string, e.g. 2027-03-01T09:00:00Z"
            )
        return value

    @field_validator("rotate_by")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            in_utc = value.astimezone(UTC)
        except OverflowError:
            in_utc = None
        if in_utc is None or not EARLIEST_ROTATE_BY <= in_utc < LATEST_ROTATE_BY:
            raise PydanticCustomError(
                "rotate_by_range", "Send a time between 1970-01-01 and 9998-12-31, in UTC"
            )
        return in_utc


class Roll(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: GraceSeconds = 0


class ReportedLeak(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="The SHA-256 (lower-case hex) of a value found: never the value itself.",
    )
    location: str = Field(
        min_length=1, max_length=2_000, description="Where it was found: FILE:LINE, or a URL."
    )

    @field_validator("location")
    @classmethod
    def _no_key_value(cls, value: str) -> str:
        # A file's path may name a value (secrets/tt_live_….env): it is echoed and kept.
        return keys.redact(value)


class LeakReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    leaks: list[ReportedLeak] = Field(min_length=1, max_length=1_000)


class LeakResult(LeakOutcome):
    sha256: str
    location: str


class LeakResults(BaseModel):
    data: list[LeakResult]


class KeyList(BaseModel):
    data: list[ApiKeyInfo]


class FailureList(BaseModel):
    data: list[FailureReport]


@blueprint.get("", responses={200: KeyList})
def list_keys(query: ListQuery) -> dict:
    """The account's keys, newest first."""
    principal = require_admin()
    found = services().keys.list(
        principal.account_id,
        include_deleted=query.include_deleted,
        rotation=query.rotation_states(),
    )
    return KeyList(data=found).model_dump(mode="json")


@blueprint.post("", responses={201: IssuedApiKey})
def create_key(body: NewKey) -> tuple[dict, int]:
    """Create a key. The response holds its full value: the only time it is ever shown."""
    principal = require_admin(to_change=True)
    issued = services().keys.create(
        principal.account_id, body.name, body.permission, actor=request_actor()
    )
    return issued.model_dump(mode="json"), 201


@blueprint.get("/<key_id>", responses={200: ApiKeyInfo})
def get_key(path: KeyPath) -> dict:
    principal = require_admin()
    return services().keys.get(principal.account_id, path.key_id).model_dump(mode="json")


@blueprint.patch("/<key_id>", responses={200: ApiKeyInfo})
def change_key(path: KeyPath, body: KeyChange) -> dict:
    """Set or clear the key's own rotate-by time."""
    principal = require_admin(to_change=True)
    changed = services().keys.set_rotate_by(
        principal.account_id, path.key_id, body.rotate_by, actor=request_actor()
    )
    return changed.model_dump(mode="json")


@blueprint.post(
    "/<key_id>/roll",
    responses={200: IssuedApiKey},
    openapi_extensions={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": Roll.model_json_schema()}},
        }
    },
)
def roll_key(path: KeyPath) -> dict:
    """Give the key a new value, keeping its id and name. The old value is refused at once, or
    keeps working for ``grace_seconds`` (at most 7 days) with a warning header on every
    response. The response holds the new value: the only time it is ever shown."""
    principal = require_admin(to_change=True)
    roll = _roll_request()
    issued = services().keys.roll(
        principal.account_id,
        path.key_id,
        timedelta(seconds=roll.grace_seconds),
        actor=request_actor(),
    )
    return issued.model_dump(mode="json")


def _roll_request() -> Roll:
    """The optional roll body (none: no grace period), which flask-openapi3's typed ``body``
    cannot express. Read as JSON whatever its Content-Type, since a grace period silently lost
    to a missing header would break every integration at once."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return Roll()
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise MalformedJson(
            'The roll body is not valid JSON. Send {"grace_seconds": N} or no body at all.'
        ) from None
    return Roll.model_validate(data)


@blueprint.delete("/<key_id>", responses={200: ApiKeyInfo})
def delete_key(path: KeyPath) -> dict:
    """Delete the key: every integration using it stops working. The record stays, marked
    deleted, so failures of its old value can still be explained."""
    principal = require_admin(to_change=True)
    deleted = services().keys.delete(principal.account_id, path.key_id, actor=request_actor())
    return deleted.model_dump(mode="json")


@blueprint.get("/<key_id>/failures", responses={200: FailureList})
def key_failures(path: KeyPath) -> dict:
    """Who still uses the key's old values: per value, reason and client, how often and when."""
    principal = require_admin()
    reports = services().keys.failures(principal.account_id, path.key_id)
    return FailureList(data=reports).model_dump(mode="json")


@blueprint.post("/leaks", responses={200: LeakResults})
def report_leaks(body: LeakReport) -> dict:
    """Report key values found where they should not be (``templateto-bridge scan --report``),
    by their SHA-256 only. A working value of one of this account's keys is a leak: the key is
    marked leaked, ``api_key.leaked`` is recorded, and the key policy's ``on_leak: roll`` rolls
    it at once. Values of other accounts' keys are ``not_found``, like values never issued."""
    principal = require_admin(to_change=True)
    reporter = request_actor()
    outcomes: dict[str, LeakOutcome] = {}
    results = []
    for leak in body.leaks:
        if leak.sha256 not in outcomes:
            outcomes[leak.sha256] = services().leaks.report(
                leak.sha256,
                leak.location,
                LeakSource.SCAN,
                reporter,
                account_id=principal.account_id,
            )
        outcome = outcomes[leak.sha256]
        results.append(LeakResult(sha256=leak.sha256, location=leak.location, **dict(outcome)))
    return LeakResults(data=results).model_dump(mode="json")
