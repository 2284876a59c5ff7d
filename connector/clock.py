"""Time, in one replaceable place: tests hand the service a clock they can move."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """Wall-clock time in UTC. ``time()`` is the cheap float form used on the hot path."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return time.time()


def format_time(moment: datetime) -> str:
    """How times appear in messages people read: ``2026-11-20 10:03 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as the API's JSON shows times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
