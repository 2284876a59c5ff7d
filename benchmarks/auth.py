"""Authentication cost in a warm process, as a ratio to the floor of SHA-256 plus a dict lookup
measured in the same run (machines here are shared and noisy, so only ratios are compared).

    python -m benchmarks.auth            # or: make bench
"""

from __future__ import annotations

import hashlib
import statistics

from benchmarks import live

ROUNDS, CALLS_PER_ROUND, TARGET_RATIO = 200, 2_000, 5.0


def main() -> None:
    with (
        live.workspace("sqlite") as (work, database_url),
        live.bridge_services(database_url, work / "data") as services,
    ):
        account = services.accounts.create("Benchmark Ltd")
        value = services.keys.create(account.id, "Benchmark").value
        authenticate = services.authenticator.authenticate
        authenticate(value)  # warm: the first call reads the database
        known = {hashlib.sha256(value.encode()).hexdigest(): object()}

        def floor() -> object:
            return known.get(hashlib.sha256(value.encode("utf-8")).hexdigest())

        def warm() -> object:
            return authenticate(value, user_agent="Zapier", path="/v1/me")

        def cold() -> object:
            services.authenticator.forget(None)
            return authenticate(value, user_agent="Zapier", path="/v1/me")

        warm_median, floor_median = live.interleaved(
            warm, floor, rounds=ROUNDS, calls=CALLS_PER_ROUND
        )
        cold_median = statistics.median(live.per_call_seconds(cold, 50) for _ in range(20))

    ratio, cold_ratio = warm_median / floor_median, cold_median / floor_median
    live.table("measurement | median per call | ratio to floor", [
        ["floor: sha256 + dict lookup", f"{floor_median * 1e6:.2f} µs", "1.00"],
        ["authenticate, warm cache", f"{warm_median * 1e6:.2f} µs", f"{ratio:.2f}"],
        ["authenticate, cache dropped (SQLite lookup)", f"{cold_median * 1e6:.1f} µs",
         f"{cold_ratio:.0f}"],
    ])  # fmt: skip
    verdict = "within" if ratio <= TARGET_RATIO else "OVER"
    print(f"\nwarm ratio {ratio:.2f}: {verdict} the target of {TARGET_RATIO:.0f}x")


if __name__ == "__main__":
    main()
