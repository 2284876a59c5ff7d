"""Zapier's "New Document" polling trigger for an account with 100,000 documents against one
with 1,000, through a live ``templateto-bridge serve`` on PostgreSQL, in the same run.

    python -m benchmarks.polling

Each poll is the request Zapier's runtime makes (``GET /zapier/triggers/new_document`` with
``page=0&limit=-1``, which the route reads as a full page of 100, and a Zapier User-Agent),
timed from send to the whole answer read. The two accounts' polls alternate.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import text

from benchmarks import documents
from benchmarks.live import (
    SERVE_DEFAULTS,
    bridge_env,
    bridge_services,
    free_port,
    running,
    serve_command,
    stop_cleanly_on_sigterm,
    throwaway_database,
)
from connector.operations import MAX_PAGE_SIZE
from connector.services import Services
from connector.templates import TemplateFields

TARGET = 1.5
SIZES = (1_000, 100_000)
WARM_UP = 30
ROUNDS = 400
POLL = "/zapier/triggers/new_document?page=0&limit=-1"
ZAPIER_USER_AGENT = "Zapier"


def fill(services: Services, account_id: str, count: int) -> None:
    """``count`` documents, one a second up to now, none expired (so each has a signed link)."""
    templates = [
        services.templates.create(account_id, TemplateFields(name=f"T{n}", body="x")).id
        for n in range(10)
    ]
    documents.fill(
        services,
        account_id,
        templates,
        count,
        newest_at=datetime.now(UTC),
        lasting=timedelta(days=7, seconds=count),
    )


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    stop_cleanly_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="bench-") as work_dir:
        work, data_dir = Path(work_dir), Path(work_dir) / "data"
        data_dir.mkdir()
        with throwaway_database("postgresql", data_dir) as database_url:
            keys: dict[int, str] = {}
            with bridge_services(database_url, data_dir) as services:
                for size in SIZES:
                    account = services.accounts.create(f"{size:,} documents")
                    fill(services, account.id, size)
                    keys[size] = services.keys.create(account.id, "Zapier").value
                with services.db.engine.begin() as connection:
                    # As autovacuum would soon after a load; the run must not race it.
                    connection.execute(text("ANALYZE documents"))
                settings = services.settings
            port = free_port()
            with running(
                serve_command(port, workers=2),
                port=port,
                env=bridge_env(settings, port),
                log=work / "serve.log",
            ) as server:
                samples = _poll(server.url, keys)
    _report(samples)


def _poll(url: str, keys: dict[int, str]) -> dict[int, list[float]]:
    session = requests.Session()
    session.headers["User-Agent"] = ZAPIER_USER_AGENT

    def timed(size: int) -> float:
        start = time.perf_counter()
        response = session.get(f"{url}{POLL}", headers={"X-Api-Key": keys[size]}, timeout=30)
        elapsed = time.perf_counter() - start
        response.raise_for_status()
        items = response.json()
        assert len(items) == MAX_PAGE_SIZE and items[0]["file_url"], "not a full page of links"
        return elapsed

    for _ in range(WARM_UP):
        for size in SIZES:
            timed(size)
    samples: dict[int, list[float]] = {size: [] for size in SIZES}
    for _ in range(ROUNDS):  # interleaved, so both see the same machine load
        for size in SIZES:
            samples[size].append(timed(size))
    return samples


def _report(samples: dict[int, list[float]]) -> None:
    small, large = (samples[size] for size in SIZES)
    median_ratio = statistics.median(large) / statistics.median(small)
    p95_ratio = percentile(large, 0.95) / percentile(small, 0.95)
    print(
        f"PostgreSQL; serve with 2 workers x {SERVE_DEFAULTS['threads']} threads; "
        f"{ROUNDS} polls per account, interleaved, one at a time, after {WARM_UP} each to warm up\n"
    )
    print(
        "| New Document poll (100 items) | 1,000 documents | 100,000 documents | ratio | target |"
    )
    print("|---|---|---|---|---|")
    for name, statistic, ratio in (
        ("median", statistics.median, median_ratio),
        ("p95", lambda s: percentile(s, 0.95), p95_ratio),
    ):
        print(
            f"| {name} | {statistic(small) * 1e3:.2f} ms | {statistic(large) * 1e3:.2f} ms "
            f"| {ratio:.2f} | {'≤ 1.5' if name == 'median' else ''} |"
        )
    verdict = "meets" if median_ratio <= TARGET else "MISSES"
    print(f"\nmedian latency ratio {median_ratio:.2f}: {verdict} the target of at most {TARGET}x")


if __name__ == "__main__":
    main()
