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

TARGET, ROUNDS, SIZES = 1.5, 300, (1_000, 100_000)
START = datetime(2026, 1, 1, tzinfo=UTC)


def account_with(
    services: Services,
    count: int,
    newest_at: datetime | None = None,
    lasting: timedelta = timedelta(days=1),
) -> tuple[str, list[str]]:
    """An account with 10 templates and ``count`` documents a second apart, bulk-inserted: from
    ``START`` on, or up to ``newest_at``; each expires ``lasting`` after it was made. Its key's
    value, and the templates' ids."""
    account = services.accounts.create(f"{count:,} documents")
    fields = [TemplateFields(name=f"T{n}", body="x") for n in range(10)]
    templates = [services.templates.create(account.id, each).id for each in fields]
    first = START if newest_at is None else newest_at - timedelta(seconds=count)
    rows = [
        {"id": new_id("doc_"), "account_id": account.id, "template_name": "Invoice",
         "template_id": templates[number % len(templates)], "format": "pdf", "size": 40_000,
         "filename": "Invoice.pdf", "sha256": "0" * 64, "client": "zapier",
         "storage_key": f"{account.id}/{number}.pdf", "created_at": made,
         "expires_at": made + lasting}
        for number, made in enumerate(first + timedelta(seconds=n) for n in range(count))
    ]  # fmt: skip
    with services.db.transaction() as session:
        for chunk in range(0, count, 10_000):
            session.execute(insert(Document), rows[chunk : chunk + 10_000])
    return services.keys.create(account.id, "Benchmark").value, templates


def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(load_settings(data_dir=Path(data_dir), database_url=""))
        services = app.extensions[EXTENSION]
        schema.upgrade(services.db.engine)
        client = app.test_client()
        accounts = {size: account_with(services, size) for size in SIZES}

        def timed(path: str, key: str) -> float:
            start = time.perf_counter()
            response = client.get(path, headers={"X-Api-Key": key})
            elapsed = time.perf_counter() - start
            assert response.status_code == 200 and len(response.json["data"]) == 50
            return elapsed

        cases = {
            "first page (50)": "/v1/documents?limit=50",
            "first page, one template": "/v1/documents?limit=50&template_id={template}",
        }
        rows = []
        for name, path in cases.items():
            samples: dict[int, list[float]] = {size: [] for size in SIZES}
            for _ in range(ROUNDS):  # interleaved, so both see the same machine load
                for size, (key, templates) in accounts.items():
                    samples[size].append(timed(path.format(template=templates[3]), key))
            small, large = (statistics.median(samples[size]) for size in SIZES)
            ms = f"{small * 1e3:.2f} ms", f"{large * 1e3:.2f} ms"
            rows.append([name, *ms, f"{large / small:.2f}", f"≤ {TARGET}"])
        services.close()
    live.table("list | 1,000 documents | 100,000 documents | ratio | target", rows)


if __name__ == "__main__":
    main()
