"""Roll under load: clients call ``GET /v1/me`` with a key continuously while it is rolled
through the admin API; after the roll returns, no request with the old value may succeed if it
was sent more than 1 s later.

    python -m benchmarks.roll_under_load

A live ``templateto-bridge serve`` with 2 workers on PostgreSQL. Client threads send the key
over fresh connections (so both workers serve it and cache it), recording each request's send
time, answer time and status. Each trial warms the caches with the current value, rolls it
(``POST /v1/api-keys/{id}/roll``, body ``{}``: no grace period), keeps sending the old value,
then moves the clients to the new one for the next trial.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import requests

from benchmarks.live import (
    NO_KEY_LIMIT,
    NO_REFUSAL_LIMITS,
    SERVE_DEFAULTS,
    bridge_env,
    bridge_services,
    free_port,
    running,
    serve_command,
    stop_cleanly_on_sigterm,
    throwaway_database,
)
from connector.api_keys import Permission

CLIENTS = 6
TRIALS = 5
WARM_SECONDS = 2.0  # every worker serves and caches the current value before the roll
AFTER_SECONDS = 2.5  # the old value keeps being sent this long after the roll returns
LIMIT_SECONDS = 1.0
TARGET_LATE_SUCCESSES = 0


@dataclass(frozen=True)
class Call:
    value: str
    sent: float
    answered: float
    status: int  # 0: no answer


@dataclass(frozen=True)
class Trial:
    old_value: str
    roll_sent: float
    roll_returned: float


class Clients:
    """Threads calling ``GET /v1/me`` with ``value`` until stopped, one request at a time each,
    every request on a new connection."""

    def __init__(self, url: str, value: str) -> None:
        self.value = value
        self.calls: list[Call] = []
        self._url = f"{url}/v1/me"
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(CLIENTS)]

    def __enter__(self) -> Clients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        session = requests.Session()
        session.headers["Connection"] = "close"
        while not self._stop.is_set():
            value = self.value
            sent = time.perf_counter()
            try:
                status = session.get(
                    self._url, headers={"X-Api-Key": value}, timeout=10
                ).status_code
            except requests.RequestException:
                status = 0
            self.calls.append(Call(value, sent, time.perf_counter(), status))


def main() -> None:
    stop_cleanly_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="bench-") as work_dir:
        work, data_dir = Path(work_dir), Path(work_dir) / "data"
        data_dir.mkdir()
        with throwaway_database("postgresql", data_dir) as database_url:
            with bridge_services(database_url, data_dir) as services:
                account = services.accounts.create("Benchmark Ltd")
                admin = services.keys.create(account.id, "Admin", Permission.ADMIN).value
                rolled = services.keys.create(account.id, "Zapier production")
                settings = services.settings
            port = free_port()
            with running(
                serve_command(port, workers=2),
                port=port,
                env=bridge_env(settings, port, {**NO_KEY_LIMIT, **NO_REFUSAL_LIMITS}),
                log=work / "serve.log",
            ) as server:
                trials, calls = _roll_repeatedly(server.url, admin, rolled.id, rolled.value)
    _report(trials, calls)


def _roll_repeatedly(
    url: str, admin: str, key_id: str, value: str
) -> tuple[list[Trial], list[Call]]:
    roller = requests.Session()
    roller.headers["X-Api-Key"] = admin
    trials = []
    with Clients(url, value) as clients:
        for _ in range(TRIALS):
            time.sleep(WARM_SECONDS)
            old_value = clients.value
            roll_sent = time.perf_counter()
            response = roller.post(f"{url}/v1/api-keys/{key_id}/roll", json={}, timeout=30)
            roll_returned = time.perf_counter()
            response.raise_for_status()
            trials.append(Trial(old_value, roll_sent, roll_returned))
            time.sleep(AFTER_SECONDS)
            clients.value = response.json()["value"]
    return trials, clients.calls


def _report(trials: list[Trial], calls: list[Call]) -> None:
    print(
        f"PostgreSQL; serve with 2 workers x {SERVE_DEFAULTS['threads']} threads; "
        f"{CLIENTS} client threads, a new connection per request; {TRIALS} rolls, each after "
        f"{WARM_SECONDS:.0f} s of load with the current value, the old value sent for "
        f"{AFTER_SECONDS} s after\n"
    )
    print(
        "| roll | roll took | requests with the old value after it returned | 200s among them "
        f"| 200s sent > {LIMIT_SECONDS:.0f} s after | last 200: sent / answered after the return |"
    )
    print("|---|---|---|---|---|---|")
    late_total, last_sent, last_answered = 0, [], []
    for number, trial in enumerate(trials, 1):
        old = [call for call in calls if call.value == trial.old_value]
        after = [call for call in old if call.sent > trial.roll_returned]
        late = [
            c for c in after if c.status == 200 and c.sent > trial.roll_returned + LIMIT_SECONDS
        ]
        successes = [call for call in old if call.status == 200]
        sent_after = max(c.sent for c in successes)
        answered_after = max(c.answered for c in successes)
        last_sent.append(sent_after - trial.roll_returned)
        last_answered.append(answered_after - trial.roll_returned)
        late_total += len(late)
        statuses = Counter(call.status for call in after)
        print(
            f"| {number} | {(trial.roll_returned - trial.roll_sent) * 1e3:.0f} ms "
            f"| {len(after)} ({_statuses(statuses)}) | {statuses[200]} | {len(late)} "
            f"| {last_sent[-1] * 1e3:+.0f} ms / {last_answered[-1] * 1e3:+.0f} ms |"
        )
    others = Counter(
        call.status for call in calls if call.status != 200 and not _is_old(call, trials)
    )
    print(
        f"\nrequests: {len(calls)}; with a current value refused: {sum(others.values())} "
        f"({_statuses(others) or 'none'})"
    )
    print(
        "propagation (last 200 with the old value, sent after the roll returned): "
        f"median {statistics.median(last_sent) * 1e3:+.0f} ms, max {max(last_sent) * 1e3:+.0f} ms"
    )
    verdict = "meets" if late_total <= TARGET_LATE_SUCCESSES else "MISSES"
    print(
        f"successes sent more than {LIMIT_SECONDS:.0f} s after a roll returned: {late_total}: "
        f"{verdict} the target of {TARGET_LATE_SUCCESSES}"
    )


def _is_old(call: Call, trials: list[Trial]) -> bool:
    """Whether ``call`` used a value after that value was rolled (its refusal is expected)."""
    return any(call.value == t.old_value and call.sent > t.roll_sent for t in trials)


def _statuses(counts: Counter[int]) -> str:
    return ", ".join(
        f"{count} x {status or 'no answer'}" for status, count in sorted(counts.items())
    )


if __name__ == "__main__":
    main()
