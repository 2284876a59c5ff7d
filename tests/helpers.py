"""Small helpers shared by the tests."""

from __future__ import annotations

import socket
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from standardwebhooks import Webhook

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


def class_tree(base: type) -> list[type]:
    """``base`` and every class under it, at any depth."""
    return [base, *(cls for subclass in base.__subclasses__() for cls in class_tree(subclass))]


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """What a receiver checks, per Standard Webhooks, computed by its reference library (without
    its check of the timestamp against the real clock: tests run on a clock they move)."""
    sent_at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
    expected = Webhook(secret).sign(headers["webhook-id"], sent_at, body.decode())
    return expected in headers["webhook-signature"].split()


def pdf_producer(content: bytes) -> str:
    """The PDF's Producer: which engine made it (xhtml2pdf, WeasyPrint, Skia/PDF for Chromium)."""
    import io

    from pypdf import PdfReader

    return str((PdfReader(io.BytesIO(content)).metadata or {}).get("/Producer", ""))
