"""Zapier's "New Document" poll for an account with 100,000 documents against one with 1,000,
through a live ``templateto-bridge serve`` on PostgreSQL, in the same run.

    python -m benchmarks.polling

Method: docs/benchmarks.md, "New Document polling trigger".
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from functools import partial

import requests
from sqlalchemy import text

from benchmarks import documents, live
from connector.operations import MAX_PAGE_SIZE

TARGET, SIZES, WARM_UP, ROUNDS = 1.5, (1_000, 100_000), 30, 400
POLL = "/zapier/triggers/new_document?page=0&limit=-1"


def main() -> None:
    live.exit_cleanly()
    with live.workspace("postgresql") as (work, database_url):
        with live.bridge_services(database_url, work / "data") as services:
            # One a second up to now, none expired: every item gets a signed download link.
            now, week = datetime.now(UTC), timedelta(days=7)
            keys = {
                n: documents.account_with(services, n, now, week + timedelta(seconds=n))[0]
                for n in SIZES
            }
            with services.db.engine.begin() as connection:
                # As autovacuum would soon after a load; the run must not race it.
                connection.execute(text("ANALYZE documents"))
        with live.served(services.settings, work / "serve.log") as server:
            samples = _poll(server.url, keys)
    _report(samples)


def _poll(url: str, keys: dict[int, str]) -> dict[int, list[float]]:
    session = requests.Session()
    session.headers["User-Agent"] = "Zapier"

    def timed(size: int) -> float:
        start = time.perf_counter()
        response = session.get(f"{url}{POLL}", headers={"X-Api-Key": keys[size]}, timeout=30)
        elapsed = time.perf_counter() - start
        response.raise_for_status()
        items = response.json()
        assert len(items) == MAX_PAGE_SIZE and items[0]["file_url"], "not a full page of links"
        return elapsed

    samples: dict[int, list[float]] = {size: [] for size in SIZES}
    for number in range(WARM_UP + ROUNDS):  # interleaved, so both see the same machine load
        for size in SIZES:
            elapsed = timed(size)
            if number >= WARM_UP:
                samples[size].append(elapsed)
    return samples


def _report(samples: dict[int, list[float]]) -> None:
    small, large = (samples[size] for size in SIZES)
    print(
        f"PostgreSQL; serve with 2 workers x {live.SERVE_DEFAULTS['threads']} threads; "
        f"{ROUNDS} polls per account, interleaved, one at a time, after {WARM_UP} each to warm up\n"
    )
    rows = []
    p95 = partial(live.percentile, share=0.95)
    for name, statistic in (("median", statistics.median), ("p95", p95)):
        ratio = statistic(large) / statistic(small)
        target = f"≤ {TARGET}" if name == "median" else ""
        row = [f"{statistic(sizes) * 1e3:.2f} ms" for sizes in (small, large)]
        rows.append([name, *row, f"{ratio:.2f}", target])
    header = "New Document poll (100 items) | 1,000 documents | 100,000 documents | ratio | target"
    live.table(header, rows)
    median_ratio = statistics.median(large) / statistics.median(small)
    verdict = "meets" if median_ratio <= TARGET else "MISSES"
    print(f"\nmedian latency ratio {median_ratio:.2f}: {verdict} the target of at most {TARGET}x")


if __name__ == "__main__":
    main()
