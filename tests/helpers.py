"""Small helpers shared by the tests."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from standardwebhooks import Webhook

from connector.clock import Clock

REPOSITORY = Path(__file__).parents[1]
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


def run_benchmark(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m <module> <args>`` from the repository, as `make bench` runs a benchmark."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def class_tree(base: type) -> list[type]:
    """``base`` and every class under it, at any depth."""
    return [base, *(cls for subclass in base.__subclasses__() for cls in class_tree(subclass))]


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """What a receiver checks, per Standard Webhooks, computed by its reference library (without
    its check of the timestamp against the real clock: tests run on a clock they move)."""
    sent_at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
    expected = Webhook(secret).sign(headers["webhook-id"], sent_at, body.decode())
    return expected in headers["webhook-signature"].split()


# --- GitHub secret scanning, as GitHub signs its matches -------------------------------------


def public_pem(private: ec.EllipticCurvePrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def write_github_keys(path: Path, signers: dict[str, ec.EllipticCurvePrivateKey]) -> None:
    """The file as GitHub publishes it (what the operator's cron job fetches)."""
    entries = [
        {"key_identifier": name, "key": public_pem(private), "is_current": True}
        for name, private in signers.items()
    ]
    path.write_text(json.dumps({"public_keys": entries}))


def signed_by_github(
    body: bytes, private: ec.EllipticCurvePrivateKey, identifier: str
) -> dict[str, str]:
    signature = base64.b64encode(private.sign(body, ec.ECDSA(hashes.SHA256()))).decode()
    return {
        "Content-Type": "application/json",
        "Github-Public-Key-Identifier": identifier,
        "Github-Public-Key-Signature": signature,
    }


def github_matches(
    *tokens: str, url: str = "https://github.com/acme/app/blob/abc/settings.py#L2"
) -> bytes:
    """Matches as GitHub sends them, one per token."""
    return json.dumps(
        [
            {"token": t, "type": "templateto_api_key", "url": url, "source": "content"}
            for t in tokens
        ]
    ).encode()


def pdf_producer(content: bytes) -> str:
    """The PDF's Producer: which engine made it (xhtml2pdf, WeasyPrint, Skia/PDF for Chromium)."""
    import io

    from pypdf import PdfReader

    return str((PdfReader(io.BytesIO(content)).metadata or {}).get("/Producer", ""))
