"""Small helpers shared by the tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import sys
from datetime import UTC, datetime, timedelta

from connector.clock import Clock

START = datetime(2026, 11, 20, 10, 3, tzinfo=UTC)


class ManualClock(Clock):
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime = START) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def time(self) -> float:
        return self.current.timestamp()

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


def key_header(value: str, user_agent: str = "pytest") -> dict[str, str]:
    return {"X-Api-Key": value, "User-Agent": user_agent}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bridge_command(*args: str) -> list[str]:
    """The templateto-bridge command line, run by this test's Python."""
    return [sys.executable, "-m", "connector", *args]


def verify_signature(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a webhook receiver does, per the Standard Webhooks spec."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(expected, sig.split(",", 1)[1])
        for sig in headers["webhook-signature"].split()
    )
