"""Documents list latency for an account with 100,000 documents against one with 1,000, in the
same run and database: paging must use the index, not scan.

    python -m benchmarks.documents
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from benchmarks import live
from connector import schema
from connector.app import create_app
from connector.config import load_settings
from connector.models import Document, new_id
from connector.services import EXTENSION, Services
from connector.templates import TemplateFields

TARGET = 1.5
ROUNDS = 300
SIZES = (1_000, 100_000)
START = datetime(2026, 1, 1, tzinfo=UTC)


def fill(
    services: Services,
    account_id: str,
    template_ids: list[str],
    count: int,
    newest_at: datetime | None = None,
    lasting: timedelta = timedelta(days=1),
) -> None:
    """``count`` documents a second apart, bulk-inserted: from ``START`` on, or up to
    ``newest_at``; each expires ``lasting`` after it was made."""
    first = START if newest_at is None else newest_at - timedelta(seconds=count)
    rows = [
        {
            "id": new_id("doc_"),
            "account_id": account_id,
            "template_id": template_ids[number % len(template_ids)],
            "template_name": "Invoice",
            "format": "pdf",
            "filename": "Invoice.pdf",
            "size": 40_000,
            "sha256": "0" * 64,
            "client": "zapier",
            "storage_key": f"{account_id}/{number}.pdf",
            "created_at": first + timedelta(seconds=number),
            "expires_at": first + timedelta(seconds=number) + lasting,
        }
        for number in range(count)
    ]
    with services.db.transaction() as session:
        for chunk in range(0, count, 10_000):
            session.execute(insert(Document), rows[chunk : chunk + 10_000])


def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(load_settings(data_dir=Path(data_dir), database_url=""))
        services = app.extensions[EXTENSION]
        schema.upgrade(services.db.engine)
        client = app.test_client()
        accounts = {}
        for size in SIZES:
            account = services.accounts.create(f"{size} documents")
            templates = [
                services.templates.create(account.id, TemplateFields(name=f"T{n}", body="x")).id
                for n in range(10)
            ]
            fill(services, account.id, templates, size)
            key = services.keys.create(account.id, "Benchmark").value
            accounts[size] = ({"X-Api-Key": key}, templates[3])

        def timed(path: str, headers: dict[str, str]) -> float:
            start = time.perf_counter()
            response = client.get(path, headers=headers)
            elapsed = time.perf_counter() - start
            assert response.status_code == 200 and len(response.json["data"]) == 50
            return elapsed

        cases = {
            "first page (50)": lambda t: "/v1/documents?limit=50",
            "first page, one template": lambda t: f"/v1/documents?limit=50&template_id={t}",
        }
        rows = []
        for name, path in cases.items():
            samples: dict[int, list[float]] = {size: [] for size in SIZES}
            for _ in range(ROUNDS):  # interleaved, so both see the same machine load
                for size, (headers, template_id) in accounts.items():
                    samples[size].append(timed(path(template_id), headers))
            small, large = (statistics.median(samples[size]) for size in SIZES)
            ms = f"{small * 1e3:.2f} ms", f"{large * 1e3:.2f} ms"
            rows.append([name, *ms, f"{large / small:.2f}", f"≤ {TARGET}"])
        services.close()
    live.table("list | 1,000 documents | 100,000 documents | ratio | target", rows)


if __name__ == "__main__":
    main()
