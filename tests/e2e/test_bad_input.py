"""Bad input at CI size: the bad-input benchmark (docs/benchmarks.md, "Bad input") run as the
program it is, with a few thousand requests instead of 12,000. It exits 1, printing what it
found, on any 5xx, stack trace or unanswered request; an API error that is not JSON with
``error.code`` and ``error.message``; a status other than the one expected (413 for each body
over the limit, the exact refusal and a request id for each malformed HTTP request and chunked
body); anything stored lost or changed; anything logged at ERROR."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Makes its own database from TEST_DATABASE_URL (tests/conftest.py).
pytestmark = pytest.mark.storage

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
def test_thousands_of_bad_requests_get_clear_answers_and_lose_nothing() -> None:
    database = "postgresql" if os.environ.get("TEST_DATABASE_URL") else "sqlite"
    command = [sys.executable, "-m", "benchmarks.bad_input", "--requests", "4000",
               "--seed", "20261128", "--database", database]  # fmt: skip

    run = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=840)

    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
