"""Authentication cost in a warm process, as a ratio to the floor of SHA-256 plus a dict lookup
measured in the same run (machines here are shared and noisy, so only ratios are compared).

    python -m benchmarks.auth            # or: make bench

Prints a Markdown table; docs/benchmarks.md records a run.
"""

from __future__ import annotations

import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from connector import schema
from connector.config import load_settings
from connector.services import Services

ROUNDS = 200
CALLS_PER_ROUND = 2_000
TARGET_RATIO = 5.0


def per_call_seconds(function: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls


def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings(data_dir=Path(data_dir), database_url="")
        services = Services.build(settings)
        schema.upgrade(services.db.engine)
        account = services.accounts.create("Benchmark Ltd")
        value = services.keys.create(account.id, "Benchmark").value
        authenticate = services.authenticator.authenticate
        authenticate(value)  # warm: the first call reads the database

        table = {hashlib.sha256(value.encode()).hexdigest(): object()}

        def floor() -> object:
            return table.get(hashlib.sha256(value.encode("utf-8")).hexdigest())

        def warm_authentication() -> object:
            return authenticate(value, user_agent="Zapier", path="/v1/me")

        def cold_authentication() -> object:
            services.authenticator.forget_all()
            return authenticate(value, user_agent="Zapier", path="/v1/me")

        floors, warms = [], []
        for _ in range(ROUNDS):  # interleaved, so both see the same machine load
            floors.append(per_call_seconds(floor, CALLS_PER_ROUND))
            warms.append(per_call_seconds(warm_authentication, CALLS_PER_ROUND))
        colds = [per_call_seconds(cold_authentication, 50) for _ in range(20)]
        services.close()

    floor_median = statistics.median(floors)
    warm_median = statistics.median(warms)
    cold_median = statistics.median(colds)
    ratio = warm_median / floor_median
    print("| measurement | median per call | ratio to floor |")
    print("|---|---|---|")
    print(f"| floor: sha256 + dict lookup | {floor_median * 1e6:.2f} µs | 1.00 |")
    print(f"| authenticate, warm cache | {warm_median * 1e6:.2f} µs | {ratio:.2f} |")
    print(
        f"| authenticate, cache dropped (SQLite lookup) | {cold_median * 1e6:.1f} µs "
        f"| {cold_median / floor_median:.0f} |"
    )
    verdict = "within" if ratio <= TARGET_RATIO else "OVER"
    print(f"\nwarm ratio {ratio:.2f}: {verdict} the target of {TARGET_RATIO:.0f}x")


if __name__ == "__main__":
    main()
