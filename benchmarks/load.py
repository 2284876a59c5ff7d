"""Load and faults on PostgreSQL: a mixed load with no 5xx and no error not asked for; a key
rolled under load, its old value refused at once on the machine that rolled it and within 100 ms
on another; kill -9 of a web worker and of the delivery
worker (only killed in-flight requests fail, every event is delivered); PostgreSQL restarted
(503s while it is down, full recovery, nothing lost).

    python -m benchmarks.load mixed      # 60 s; --seconds, --connections, --without hooks, ...
    python -m benchmarks.load roll
    python -m benchmarks.load faults     # kills, then restart; or kills, or restart, alone

PostgreSQL is a cluster of the run's own (Debian's ``pg_virtualenv``, which this re-runs itself
under), so that restarting it disturbs nobody. Exit status 1 when an expectation fails. What each
scenario sends and expects: docs/benchmarks.md, "Load and faults".
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests

from benchmarks import live
from connector.api_keys import Permission
from connector.config import Settings
from connector.services import Services
from connector.templates import TemplateFields

MIX = {"auth": 40.0, "polling": 35.0, "render": 15.0, "hooks": 10.0}
ROLL_CLIENTS, ROLLS = 4, 30
WARM_SECONDS = 1.0  # every worker serves and caches the current value before the roll
AFTER_SECONDS = 1.0  # the old value keeps being sent this long after the roll returns
ZAPIER = {"User-Agent": "Zapier"}
FAULT_CONNECTIONS, FAULT_SECONDS, LEASE_SECONDS, RECEIVER_DELAY = 16, 30, 5, 0.2
WEB_KILL_AT, DELIVERY_KILL_AT, DELIVERY_RESTART_AT = 8.0, 12.0, 14.0
POSTGRES_STOP_AT, POSTGRES_DOWN_SECONDS, RECOVERY_TARGET = 8.0, 5.0, 5.0
# One worker delivers about 80 a second (16 POSTs at a time, 0.2 s each), fewer than the load
# makes: wait while deliveries progress, as "every event delivered" is about loss, not speed.
STALL_SECONDS, DRAIN_LIMIT_SECONDS = 20, 240
LEASE = {"BRIDGE_DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS)}
LEASED = "SELECT id FROM deliveries WHERE lease_until > now()"  # sent or being sent, unrecorded


TEXT_BODY = "Invoice {{ number }} for {{ customer.name }}\nTotal: {{ total }} EUR\n"
HTML_BODY = (
    "<html><body><h1>Invoice {{ number }}</h1><p>{{ customer.name }}</p>"
    "<table>{% for line in lines %}<tr><td>{{ line.item }}</td><td>{{ line.price }}</td></tr>"
    "{% endfor %}</table><p><strong>Total: {{ total }} EUR</strong></p></body></html>"
)


@dataclass(frozen=True)
class LoadAccount:
    id: str
    key: str  # an admin's: the roll scenario rolls another key with it
    deleted_key: str
    template_id: str  # an invoice with an HTML body (for PDF) and a text body (for TXT)


def load_account(services: Services, name: str) -> LoadAccount:
    account = services.accounts.create(name)
    key = services.keys.create(account.id, "Load", Permission.ADMIN).value
    gone = services.keys.create(account.id, "Deleted")
    services.keys.delete(account.id, gone.id)
    fields = TemplateFields(name="Invoice", body=HTML_BODY, text_body=TEXT_BODY)
    template = services.templates.create(account.id, fields)
    return LoadAccount(account.id, key, gone.value, template.id)


def invoice(number: int) -> dict[str, Any]:
    """The data of an invoice for the account's template."""
    customer = {"name": f"Customer {number % 97}"}
    lines = [{"item": f"Item {n}", "price": 10 + n} for n in range(5)]
    return {"number": number, "customer": customer, "lines": lines, "total": 60}


@dataclass
class Deployment:
    database_url: str  # for psycopg
    settings: Settings
    account: LoadAccount
    receiver: live.Receiver
    server: live.Server
    stack: ExitStack
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)  # delivery workers

    def start_delivery_worker(self) -> None:
        log = self.server.log.with_name(f"worker-{len(self.workers) + 1}.log")
        env = live.bridge_env(self.settings, None, {**live.DEPLOYED, **LEASE})
        worker = live.started([sys.executable, "-m", "connector", "worker"], env=env, log=log)
        self.workers.append(self.stack.enter_context(worker))

    def rows(self, statement: str, *parameters: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            return connection.execute(statement, parameters).fetchall()

    def documents(self) -> set[str]:
        return {row[0] for row in self.rows("SELECT id FROM documents")}

    def deliveries(self) -> dict[str, int]:
        return dict(self.rows("SELECT status, count(*) FROM deliveries GROUP BY 1"))


@contextmanager
def deployment(work: Path, faults: bool, serve: dict[str, Any]) -> Iterator[Deployment]:
    """The service on the run's cluster; for ``faults``, with a subscription to the receiver
    (which then checks signatures) and a delivery worker of its own."""
    url = f"postgresql://postgres:{os.environ['PGPASSWORD']}@{live.HOST}:{os.environ['PGPORT']}"
    with psycopg.connect(f"{url}/postgres", autocommit=True) as admin:
        admin.execute("CREATE DATABASE bridge")
    service_url = f"{url.replace('postgresql:', 'postgresql+psycopg:')}/bridge"
    private = {"allow_private_hook_targets": True}
    with live.bridge_services(service_url, work / "data", **private) as services:
        account = load_account(services, "Load Ltd")
    with ExitStack() as stack:
        receiver = stack.enter_context(live.Receiver(RECEIVER_DELAY * faults).running())
        server = stack.enter_context(live.served(services.settings, work / "server.log", **serve))
        found = Deployment(f"{url}/bridge", services.settings, account, receiver, server, stack)
        if faults:
            hook = {"target_url": f"{receiver.url}/hook", "events": ["document.created"]}
            headers = {"X-Api-Key": account.key}
            answer = requests.post(f"{server.url}/v1/hooks", json=hook, headers=headers, timeout=10)
            receiver.secret = answer.json()["secret"]
            found.start_delivery_worker()
        yield found


def postgres(action: str) -> None:
    """Stop or start the run's own cluster (pg_virtualenv names it ``regress``)."""
    command = ["pg_ctlcluster", os.environ["PGVERSION"], "regress", action]
    subprocess.run(command + ["-m", "fast"] * (action == "stop"), check=True)


# --- mixed load --------------------------------------------------------------------------------
def mixed(found: Deployment, arguments: argparse.Namespace) -> bool:
    seconds, connections = arguments.seconds, arguments.connections
    weights = {name: weight for name, weight in MIX.items() if name not in arguments.without}
    print(
        f"\n## Mixed load: {connections} connections, closed loop, {seconds} s after a 3 s "
        f"warm-up; {weights}, PDF {arguments.pdf_share:.0%} of the renders\n"
    )
    numbers, account, key = itertools.count(1), found.account, found.account.key

    def auth_test(client: live.Client, chance: random.Random) -> None:
        if chance.random() < 0.05:
            name, deleted = "auth test, deleted key (401 asked for)", account.deleted_key
            client.call(name, "GET", "/v1/me", 401, key=deleted, expect_code="api_key_deleted")
        else:
            client.call("auth test", "GET", "/v1/me", 200, key=key)

    def polling(client: live.Client, _: random.Random) -> None:
        client.call("polling", "GET", "/zapier/triggers/new_document", 200, key=key, headers=ZAPIER)

    def render(client: live.Client, chance: random.Random) -> None:
        number, draw = next(numbers), chance.random()
        body = {"template_id": account.template_id, "format": "txt", "data": invoice(number)}
        name, expect, code = "render TXT", 201, ""
        if draw < 0.05:
            name, expect = "render, missing variable (422 asked for)", 422
            code, body = (
                "template_variable_missing",
                {**body, "strict": True, "data": {"number": number}},
            )
        elif draw < 0.05 + arguments.pdf_share:
            name, body = "render PDF", {**body, "format": "pdf"}
        # One account has at most half the render slots: past them, the documented 429.
        client.call(name, "POST", "/v1/documents", expect, key=key, json=body, expect_code=code,
                    may_shed=True)  # fmt: skip

    def hooks(client: live.Client, _: random.Random) -> None:
        hook = {"target_url": f"{found.receiver.url}/{next(numbers)}", "event": "document.created"}
        name, path = "subscribe (REST hook)", "/zapier/hooks"
        created = client.call(name, "POST", path, 201, key=key, json=hook, headers=ZAPIER)
        if created is not None and created.status_code == 201:
            path = f"/zapier/hooks/{created.json()['id']}"
            client.call("unsubscribe (REST hook)", "DELETE", path, 200, key=key, headers=ZAPIER)

    chosen = {"auth": auth_test, "polling": polling, "render": render, "hooks": hooks}
    mix = [(chosen[name], weight) for name, weight in weights.items()]
    live.run_load(found.server.url, connections=connections, seconds=3, mix=mix)
    outcomes, _ = live.run_load(found.server.url, connections=connections, seconds=seconds, mix=mix)
    live.latency_table(outcomes, seconds)
    left = found.rows("SELECT count(*) FROM hooks")[0][0]
    print(
        f"\n{len(outcomes):,} requests, {len(outcomes) / seconds:.0f} per second; webhook POSTs "
        f"received: {found.receiver.posts:,}; subscriptions left: {left}"
    )
    server_errors = [o for o in outcomes if o.status is not None and o.status >= 500]
    unasked = sorted((o for o in outcomes if not o.expected), key=lambda o: o.started)
    for o in unasked[:10]:
        print(f"    not asked for, at {o.started:6.2f} s: {o.operation}: {o.answer}")
    return all(
        [
            live.verdict("no 5xx", not server_errors, f"{len(server_errors)} of {len(outcomes):,}"),
            live.verdict(
                "no error that was not asked for", not unasked, live.answers(unasked) or "none"
            ),
            live.verdict("every subscription ended", not left, f"{left} left"),
        ]
    )


# --- a key rolled under load ------------------------------------------------------------------
def roll(found: Deployment, work: Path) -> bool:
    """``GET /v1/me`` on two "machines" (``serve`` processes sharing PostgreSQL, not memory),
    each request on a new or a kept-alive connection; ROLLS no-grace rolls on the first. What
    is expected: docs/benchmarks.md, "Roll under load"."""
    print(
        f"\n## Roll under load: {ROLL_CLIENTS} clients per machine, new or kept-alive connections "
        f"at random, {ROLLS} rolls, each after {WARM_SECONDS:g} s of load with the current value, "
        f"the old value sent for {AFTER_SECONDS:g} s after\n"
    )
    apart = {**live.DEPLOYED, "BRIDGE_RUNTIME_DIR": str(work / "other-machine")}
    other = found.stack.enter_context(live.served(found.settings, work / "other.log", extra=apart))
    url, admin = found.server.url, {"X-Api-Key": found.account.key}
    machines = {"rolling machine": url, "other machine": other.url}
    key = requests.post(f"{url}/v1/api-keys", json={"name": "Rolled"}, headers=admin).json()
    current = [key["value"]]  # the clients' value: the new one after each roll

    def call(client: live.Client, chance: random.Random) -> None:
        value = current[0]  # the outcome's "operation" is the value it used
        fresh = {"Connection": "close"} if chance.random() < 0.5 else {}
        client.call(value, "GET", "/v1/me", 200, key=value, headers=fresh)

    seconds, trials = ROLLS * (WARM_SECONDS + AFTER_SECONDS), []  # (old value, sent, returned)
    with ThreadPoolExecutor(len(machines)) as pool:
        shape = {"connections": ROLL_CLIENTS, "seconds": seconds, "mix": [(call, 1.0)]}
        loads = {name: pool.submit(live.run_load, at, **shape) for name, at in machines.items()}
        for _ in range(ROLLS):
            time.sleep(WARM_SECONDS)
            sent = time.monotonic()
            answer = requests.post(f"{url}/v1/api-keys/{key['id']}/roll", json={}, headers=admin)
            trials.append((current[0], sent, time.monotonic()))
            time.sleep(AFTER_SECONDS)
            current[0] = answer.json()["value"]
        results = {name: load.result() for name, load in loads.items()}
    rows, verdicts = [], []
    for name, (outcomes, started) in results.items():
        late, propagation, sent_after = 0, [], 0
        for old_value, _, returned in trials:
            after = returned - started  # as the outcomes count: from the load's start
            old = [o for o in outcomes if o.operation == old_value and o.started > after]
            sent_after += len(old)
            successes = [o.started - after for o in old if o.status == 200]
            late += len(successes)
            propagation.append(max(successes, default=0.0))
        # Answered before its value's roll was even sent (one sent just before may be served
        # after it, and rightly refused): a working value refused.
        rolled = {old_value: sent - started for old_value, sent, _ in trials}
        refused = [o for o in outcomes if o.status != 200
                   and o.started + o.seconds < rolled.get(o.operation, 1e9)]  # fmt: skip
        p99 = live.percentile(propagation, 0.99)
        rows.append([
            name, f"{len(outcomes):,}", f"{sent_after:,}", late,
            f"{p99 * 1e3:.0f} / {max(propagation) * 1e3:.0f} ms", len(refused),
        ])  # fmt: skip
        verdicts.append(live.verdict(
            "rolling machine: no success sent after a roll returned", not late,
            f"{late} in {ROLLS} rolls",
        ) if name == "rolling machine" else live.verdict(
            "other machine: old value refused within 100 ms (p99)", p99 < 0.1,
            f"p99 {p99 * 1e3:.0f} ms",
        ))  # fmt: skip
        verdicts.append(live.verdict(
            f"{name}: no request with a current value refused", not refused,
            live.answers(refused) or "none"))  # fmt: skip
    took = [(returned - sent) * 1e3 for _, sent, returned in trials]
    live.table("machine | requests | with an old value, sent after the roll returned | of "
               "them 200 | last 200 after the return, p99 / max | with a current value refused",
               rows)  # fmt: skip
    print(f"\nroll took: median {statistics.median(took):.0f} ms, max {max(took):.0f} ms")
    return all(verdicts)


# --- faults ------------------------------------------------------------------------------------
def fault_load(found: Deployment) -> tuple[list[live.Outcome], float, list[str]]:
    """Auth tests and TXT renders, half and half: the outcomes, when the load started, and the
    ids of the documents answered 201."""
    created: list[str] = []
    key, template = found.account.key, found.account.template_id

    def auth_test(client: live.Client, _: random.Random) -> None:
        client.call("auth test", "GET", "/v1/me", 200, key=key)

    def render(client: live.Client, chance: random.Random) -> None:
        body = {"template_id": template, "format": "txt", "data": invoice(chance.randrange(99))}
        answer = client.call("render TXT", "POST", "/v1/documents", 201, key=key, json=body,
                             may_shed=True)  # fmt: skip
        if answer is not None and answer.status_code == 201:
            created.append(answer.json()["id"])

    mix = [(auth_test, 1.0), (render, 1.0)]
    url, connections, seconds = found.server.url, FAULT_CONNECTIONS, FAULT_SECONDS
    print(f"{connections} connections, closed loop, auth tests and TXT renders half and half, "
          f"{seconds} s; delivery lease {LEASE_SECONDS} s; the receiver answers after "
          f"{RECEIVER_DELAY:g} s\n")  # fmt: skip
    return (*live.run_load(url, connections=connections, seconds=seconds, mix=mix), created)


def scheduled(actions: dict[str, tuple[float, Callable[[], Any]]]) -> dict[str, Future[Any]]:
    """Run each action (name: seconds from now, action) in a thread of its own; each future's
    result is when it began, what it returned and when it ended (time.monotonic())."""
    start, pool = time.monotonic(), ThreadPoolExecutor(len(actions))

    def at(seconds: float, action: Callable[[], Any]) -> tuple[float, Any, float]:
        time.sleep(max(0.0, start + seconds - time.monotonic()))
        began = time.monotonic()
        return began, action(), time.monotonic()

    futures = {name: pool.submit(at, *timed) for name, timed in actions.items()}
    pool.shutdown(wait=False)
    return futures


def delivered(found: Deployment, created: list[str], existing: set[str]) -> list[bool]:
    """Wait until the receiver has seen every document in the database and nothing is pending
    (or deliveries stop progressing); print what arrived; judge that nothing was lost.
    ``existing``: the documents made before the load."""
    begun = progressed = time.monotonic()
    left = -1
    while True:
        documents = found.documents()
        missing = documents - set(found.receiver.documents)
        now = time.monotonic()
        if len(missing) != left:
            left, progressed = len(missing), now
        settled = not missing and not found.deliveries().get("pending")
        if settled or now - progressed > STALL_SECONDS or now - begun > DRAIN_LIMIT_SECONDS:
            break
        time.sleep(0.5)
    drain, statuses = time.monotonic() - begun, found.deliveries()
    again = [len(times) - 1 for times in found.receiver.arrivals.values() if len(times) > 1]
    print(
        f"\ndocuments in the database: {len(documents):,}; webhook POSTs received: "
        f"{found.receiver.posts:,} for {len(found.receiver.arrivals):,} webhook ids "
        f"({len(again)} sent more than once, {sum(again)} extra POSTs); deliveries by status: "
        f"{statuses}; documents made whose 201 the client did not see: "
        f"{len(documents - existing - set(created))}"
    )
    no_row, bad = set(created) - documents, found.receiver.bad_signatures
    count = f"{len(documents) - len(missing):,} of {len(documents):,}, {drain:.1f} s after the load"
    return [
        live.verdict("every 201 has its document row", not no_row, f"{len(no_row)} missing"),
        live.verdict("every document's event delivered", not missing, count),
        live.verdict(
            "every delivery recorded as succeeded", set(statuses) == {"succeeded"}, str(statuses)
        ),
        live.verdict("every signature verifies", not bad, f"{bad} bad"),
    ]


def kills(found: Deployment) -> bool:
    print(
        f"\n## kill -9: a web worker at {WEB_KILL_AT:g} s, the delivery worker at "
        f"{DELIVERY_KILL_AT:g} s (a new one at {DELIVERY_RESTART_AT:g} s)\n"
    )
    workers = found.server.workers()

    def kill_web_worker() -> int:
        victim = random.choice(found.server.workers())
        os.kill(victim, 9)
        while victim in found.server.workers():  # dying takes up to a tenth of a second
            time.sleep(0.001)
        return victim

    def kill_delivery_worker() -> tuple[list[str], float]:
        # With deliveries in hand: between batches it may hold none for a moment.
        deadline, leased = time.monotonic() + 3, []
        while not leased and time.monotonic() < deadline:
            leased = [row[0] for row in found.rows(LEASED)]
        os.kill(found.workers[-1].pid, 9)
        return leased, time.monotonic()

    faults = scheduled({
        "web worker": (WEB_KILL_AT, kill_web_worker),
        "delivery worker": (DELIVERY_KILL_AT, kill_delivery_worker),
        "new delivery worker": (DELIVERY_RESTART_AT, found.start_delivery_worker),
    })  # fmt: skip
    existing = found.documents()
    outcomes, start, created = fault_load(found)
    (killed_at, victim, gone), (worker_killed_at, (leased, killed), _), (restarted, _, _) = (
        future.result() for future in faults.values()
    )
    kill_at, gone_at = killed_at - start, gone - start
    # In flight: sent before the worker was gone and not answered before the SIGKILL.
    in_flight = [o for o in outcomes if o.started <= gone_at and o.started + o.seconds >= kill_at]
    failures = [o for o in outcomes if o.failed]
    outside = [o for o in failures if o not in in_flight]
    answered_before = [o for o in outcomes if o.started + o.seconds < kill_at]
    live.phases_table({
        "answered before the web worker's kill": answered_before,
        "in flight at the kill (all workers)": in_flight,
        "sent after the worker was gone": [o for o in outcomes if o.started > gone_at],
    })  # fmt: skip
    print()
    live.latency_table(outcomes, FAULT_SECONDS)
    after = found.server.workers()
    print(
        f"\nweb workers {workers}; SIGKILL to {victim} at {kill_at:.2f} s, gone at "
        f"{gone_at:.2f} s; workers after: {after}. In flight at the kill: {len(in_flight)} (sent "
        f"while it was dying: {sum(o.started > kill_at for o in in_flight)}); failed: "
        f"{live.answers(failures) or 'none'}"
    )
    arrivals = found.receiver.arrivals
    sent = [i for i in leased if arrivals.get(i) and arrivals[i][0] <= killed]
    again = [arrivals[i][1] - killed for i in sent if len(arrivals[i]) > 1]
    attempts = found.rows(
        "SELECT count(*), string_agg(coalesce(status_code::text, error), ', ') "
        "FROM delivery_attempts WHERE delivery_id = ANY(%s) GROUP BY delivery_id",
        leased,
    )
    later = [t - killed for times in arrivals.values() for t in times if t > killed]
    print(
        f"delivery worker killed at {worker_killed_at - start:.2f} s holding "
        f"{len(leased)} leased deliveries, {len(sent)} of them already at the receiver; sent "
        f"again: {len(again)}, {min(again, default=0):.1f} to {max(again, default=0):.1f} s after "
        f"the kill; attempts recorded for them: "
        f"{dict(Counter(f'{n} ({statuses})' for n, statuses in attempts))}; a new worker started "
        f"at {restarted - start:.2f} s; deliveries resumed "
        f"{min(later, default=float('nan')):.1f} s after the kill"
    )
    shown = "".join(f"; {o.operation} at {o.started:.2f} s: {o.answer}" for o in outside[:5])
    return all([
        live.verdict("only requests in flight at the web worker's kill failed", not outside,
                     f"{len(failures)} failed, {len(outside)} of them not in flight{shown}"),
        live.verdict("gunicorn replaced the killed worker", len(after) == len(workers),
                     f"{len(workers)} workers before, {len(after)} after"),
        *delivered(found, created, existing),
    ])  # fmt: skip


def restart(found: Deployment) -> bool:
    print(
        f"\n## PostgreSQL stopped (pg_ctlcluster stop -m fast) at {POSTGRES_STOP_AT:g} s, "
        f"started again {POSTGRES_DOWN_SECONDS:g} s later\n"
    )
    workers = found.server.workers()
    readiness: list[tuple[float, int]] = []

    def probe_readiness() -> None:
        while not all(future.done() for future in stops.values()):
            try:
                status = requests.get(f"{found.server.url}/readyz", timeout=5).status_code
            except requests.RequestException:
                status = 0
            readiness.append((time.monotonic(), status))
            time.sleep(0.25)

    stops = scheduled({
        "stop": (POSTGRES_STOP_AT, lambda: postgres("stop")),
        "start": (POSTGRES_STOP_AT + POSTGRES_DOWN_SECONDS, lambda: postgres("start")),
        "end of the load": (FAULT_SECONDS, lambda: None),
    })  # fmt: skip
    threading.Thread(target=probe_readiness).start()
    existing = found.documents()
    outcomes, start, created = fault_load(found)
    (stop_began, _, stopped), (_, _, up) = (stops[name].result() for name in ("stop", "start"))
    stop_began, stopped, up = stop_began - start, stopped - start, up - start
    before = [o for o in outcomes if o.started + o.seconds < stop_began]
    after = [o for o in outcomes if o.started >= up]
    during = [o for o in outcomes if o not in before and o not in after]
    phases = {"before the stop": before, "stopping, down, starting": during}
    live.phases_table({**phases, "began after it was back": after})
    print()
    seconds = range(int(max(0.0, stop_began - 2)), int(up + 8))
    by_second = [[f"{s} to {s + 1} s", live.answers(o for o in outcomes if s <= o.started < s + 1)]
                 for s in seconds]  # fmt: skip
    live.table("second (by start) | answers", by_second)
    print()
    live.latency_table(outcomes, FAULT_SECONDS)

    def proper_503(o: live.Outcome) -> bool:
        json_with_retry_after = o.json_error and (o.retry_after or "").isdigit()
        return (o.status, o.code) == (503, "storage_unavailable") and json_with_retry_after

    late = [o for o in after if not o.expected]
    recovery = max((o.started - up for o in late), default=0.0)
    ready = [at - start - up for at, status in readiness if at - start >= up and status == 200]
    not_ready = [at - start for at, status in readiness if status != 200]
    other_5xx = [o for o in outcomes if o.failed and not proper_503(o)]
    proper = [o for o in during if proper_503(o)]
    improper = [o for o in during if not (o.expected or proper_503(o))]
    print(
        f"\nstop began {stop_began:.2f} s, stopped {stopped:.2f} s, back (start returned) "
        f"{up:.2f} s; the last answer not asked for began {recovery:.2f} s after it was back; "
        f"/readyz 200 again {min(ready, default=float('nan')):.2f} s after (not ready from "
        f"{min(not_ready, default=0):.2f} s to {max(not_ready, default=0):.2f} s)"
    )
    retry_after = sorted({o.retry_after for o in proper})
    return all([
        live.verdict("before the stop, the answers asked for", all(o.expected for o in before),
                     f"{sum(not o.expected for o in before)} other of {len(before):,}"),
        live.verdict("while down: 503 JSON with Retry-After, or the answer asked for",
                     bool(proper) and not improper, f"{len(proper):,} such 503s, Retry-After "
                     f"{retry_after}; other: {live.answers(improper) or 'none'}"),
        live.verdict("no other 5xx, no connection errors, at any time", not other_5xx,
                     live.answers(other_5xx) or "none"),
        live.verdict(f"full recovery within {RECOVERY_TARGET:g} s of PostgreSQL being back",
                     recovery <= RECOVERY_TARGET and bool(ready), f"{len(after) - len(late):,} "
                     f"of {len(after):,} answers after it was back were as asked for"),
        live.verdict("no process died (same web workers, delivery worker up)",
                     found.server.workers() == workers and found.workers[-1].poll() is None,
                     f"web workers {workers} before, {found.server.workers()} after"),
        *delivered(found, created, existing),
    ])  # fmt: skip


def main() -> None:
    if "PG_CLUSTER_CONF_ROOT" not in os.environ:  # not yet in a PostgreSQL cluster of its own
        command = [sys.executable, "-m", "benchmarks.load", *sys.argv[1:]]
        os.execvp("pg_virtualenv", ["pg_virtualenv", "-t", "-o", "max_connections=200", *command])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=["mixed", "roll", "faults", "kills", "restart"])
    parser.add_argument("--seconds", type=int, default=60, help="mixed: of the load")
    parser.add_argument("--connections", type=int, default=64, help="mixed")
    parser.add_argument("--pdf-share", type=float, default=0.10, help="mixed: of the renders")
    parser.add_argument("--without", action="append", default=[], choices=MIX,
                        help="mixed: leave this operation out (repeatable)")  # fmt: skip
    parser.add_argument("--env", action="append", default=[], metavar="BRIDGE_NAME=VALUE",
                        help="a setting for the server (repeatable)")  # fmt: skip
    arguments = parser.parse_args()
    faults = arguments.scenario in {"faults", "kills", "restart"}
    settings = dict(e.split("=", 1) for e in arguments.env)
    extra = {**live.DEPLOYED, **(LEASE if faults else {}), **settings}
    # Faults: web workers that only serve, and a delivery worker of its own to kill.
    serve = {"mixed": {"threads": 16}, "roll": {}}.get(arguments.scenario)
    serve = {"workers": 3, "deliver": False} if serve is None else serve
    live.exit_cleanly(720)
    print(
        f"PostgreSQL {os.environ['PGVERSION']} of the run's own; Redis abuse limits; serve "
        f"{serve or 'with its defaults'}; settings {settings or 'the defaults'}"
    )
    results = {}
    with tempfile.TemporaryDirectory(prefix="load-") as directory:
        work = Path(directory)
        with deployment(work, faults, {**serve, "extra": extra}) as found:
            if arguments.scenario == "mixed":
                results["mixed"] = mixed(found, arguments)
            if arguments.scenario == "roll":
                results["roll"] = roll(found, work)
            if arguments.scenario in {"faults", "kills"}:
                results["kills"] = kills(found)
            if arguments.scenario in {"faults", "restart"}:
                results["restart"] = restart(found)
            results["server up at the end"] = found.server.process.poll() is None
        for log in sorted(work.glob("*.log")):
            live.print_log_levels(log)
        postgres_log = Path(os.environ["PG_CLUSTER_CONF_ROOT"]).parent / "log"
        lines = [
            line for log in postgres_log.glob("*.log") for line in log.read_text().splitlines()
        ]
        errors = Counter(line.split("ERROR:  ")[1] for line in lines if "@bridge ERROR:  " in line)
        print(f"PostgreSQL's log, ERROR lines for the service's database: {dict(errors) or 'none'}")
    print("\n" + ", ".join(f"{name}: {'PASS' if ok else 'FAIL'}" for name, ok in results.items()))
    sys.exit(0 if all(results.values()) else 1)


if __name__ == "__main__":
    main()
