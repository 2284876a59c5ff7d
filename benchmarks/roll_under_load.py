"""Roll under load: clients call ``GET /v1/me`` with a key while it is rolled; after the roll
returns, no request with the old value may succeed if it was sent more than 1 s later.

    python -m benchmarks.roll_under_load

Method: docs/benchmarks.md, "Roll under load".
"""

from __future__ import annotations

import random
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

from benchmarks import live
from connector.api_keys import Permission

CLIENTS, TRIALS = 6, 5
WARM_SECONDS = 2.0  # every worker serves and caches the current value before the roll
AFTER_SECONDS = 2.5  # the old value keeps being sent this long after the roll returns
LIMIT_SECONDS, TARGET_LATE_SUCCESSES = 1.0, 0


@dataclass(frozen=True)
class Trial:
    old_value: str
    sent: float  # time.monotonic()
    returned: float


def main() -> None:
    live.exit_cleanly()
    with live.workspace("postgresql") as (work, database_url):
        with live.bridge_services(database_url, work / "data") as services:
            account = services.accounts.create("Benchmark Ltd")
            admin = services.keys.create(account.id, "Admin", Permission.ADMIN).value
            rolled = services.keys.create(account.id, "Zapier production")
        # The abuse limits are raised (live.UNLIMITED): with the defaults, thousands of refused
        # old values put 127.0.0.1 over its limit, and after the next roll even the admin key,
        # no longer cached, would get 429s. They cannot hide a late success: an address over
        # its limit still gets through with a value the worker holds as working.
        with live.served(services.settings, work / "serve.log") as server:
            current = [rolled.value]  # the clients' value: the new one after each trial

            def call(client: live.Client, _: random.Random) -> None:
                value = current[0]  # the outcome's "operation" is the value it used
                client.call(value, "GET", "/v1/me", 200, key=value, headers={"Connection": "close"})

            seconds = TRIALS * (WARM_SECONDS + AFTER_SECONDS)
            with ThreadPoolExecutor(1) as pool:
                load = pool.submit(
                    live.run_load,
                    server.url,
                    connections=CLIENTS,
                    seconds=seconds,
                    mix=[(call, 1.0)],
                )
                trials = roll(server.url, admin, rolled.id, current)
                outcomes, started = load.result()
    report(trials, outcomes, started)


def roll(url: str, admin: str, key_id: str, current: list[str]) -> list[Trial]:
    roller = requests.Session()
    trials = []
    for _ in range(TRIALS):
        time.sleep(WARM_SECONDS)
        sent = time.monotonic()
        response = roller.post(
            f"{url}/v1/api-keys/{key_id}/roll", json={}, headers={"X-Api-Key": admin}, timeout=30
        )
        trials.append(Trial(current[0], sent, time.monotonic()))
        response.raise_for_status()
        time.sleep(AFTER_SECONDS)
        current[0] = response.json()["value"]
    return trials


def report(trials: list[Trial], outcomes: list[live.Outcome], started: float) -> None:
    print(
        f"PostgreSQL; serve with 2 workers x {live.SERVE_DEFAULTS['threads']} threads; {CLIENTS} "
        f"clients, a new connection per request; {TRIALS} rolls, each after {WARM_SECONDS:.0f} s "
        f"of load with the current value, the old value sent for {AFTER_SECONDS} s after\n"
    )
    rows, late_total, last_sent = [], 0, []
    for number, trial in enumerate(trials, 1):
        returned = trial.returned - started  # as the outcomes count: from the load's start
        old = [o for o in outcomes if o.operation == trial.old_value]
        after = [o for o in old if o.started > returned]
        late = [o for o in after if o.status == 200 and o.started - returned > LIMIT_SECONDS]
        successes = [o for o in old if o.status == 200]
        last_sent.append(max(o.started for o in successes) - returned)
        last_answered = max(o.started + o.seconds for o in successes) - returned
        late_total += len(late)
        took = f"{(trial.returned - trial.sent) * 1e3:.0f} ms"
        last = f"{last_sent[-1] * 1e3:+.0f} ms / {last_answered * 1e3:+.0f} ms"
        statuses = f"{len(after)} ({live.answers(after)})"
        rows.append([number, took, statuses, sum(o.status == 200 for o in after), len(late), last])
    live.table(
        "roll | roll took | requests with the old value after it returned | 200s among them | "
        f"200s sent > {LIMIT_SECONDS:.0f} s after | last 200: sent / answered after the return",
        rows,
    )
    rolled = {trial.old_value: trial.sent - started for trial in trials}
    refused = [o for o in outcomes if o.status != 200 and o.started < rolled.get(o.operation, 1e9)]
    print(f"\nrequests: {len(outcomes):,}; with a current value refused: {len(refused)}")
    print(
        "propagation (last 200 with the old value, sent after the roll returned): median "
        f"{statistics.median(last_sent) * 1e3:+.0f} ms, max {max(last_sent) * 1e3:+.0f} ms"
    )
    verdict = "meets" if late_total <= TARGET_LATE_SUCCESSES else "MISSES"
    print(
        f"successes sent more than {LIMIT_SECONDS:.0f} s after a roll returned: {late_total}: "
        f"{verdict} the target of {TARGET_LATE_SUCCESSES}"
    )


if __name__ == "__main__":
    main()
