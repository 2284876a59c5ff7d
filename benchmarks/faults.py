"""Faults under load, on a private PostgreSQL cluster: kill -9 a web worker and the delivery
worker (only the killed in-flight requests fail, every event is still delivered), and restart
PostgreSQL (503s while it is down, full recovery after, nothing lost).

    python -m benchmarks.faults                      # both scenarios, 3 to 5 minutes
    python -m benchmarks.faults --scenario kills
    python -m benchmarks.faults --scenario restart

A PostgreSQL cluster of its own (initdb in a temporary directory, on a free port of
127.0.0.1, run as the ``postgres`` user when started as root) so that restarting it disturbs
nobody; Redis on 127.0.0.1:6379 for the abuse limits. ``templateto-bridge serve --no-delivery``
(3 workers x 8 threads) and one ``templateto-bridge worker`` deliver ``document.created`` to a
receiver on 127.0.0.1 that answers after 0.2 s (so deliveries are in flight when the worker is
killed) and checks every signature. The delivery lease is 5 s.

kills: 16 connections of auth tests and TXT renders for 30 s; at 8 s one gunicorn worker gets
SIGKILL; at 12 s the delivery worker gets SIGKILL, and a new one starts at 14 s. Every failed
request must have been in flight at the web worker's kill; every document in the database must
reach the receiver (at least once: duplicates are counted, not failed).

restart: the same load for 30 s; at 8 s ``pg_ctl stop -m fast``, 5 s down, ``pg_ctl start``.
While it is stopping or stopped, answers are 503 (JSON, with Retry-After) or still 2xx; no other
5xx at any time; all 2xx again within 5 s of PostgreSQL being back; every 201's document has its
row, and every document's event is delivered.

Exit status 1 when any expectation fails. Everything started here is stopped and removed at the
end, also on failure.
"""

from __future__ import annotations

import argparse
import os
import pwd
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests

from benchmarks.live import (
    HOST,
    children,
    free_port,
    serve_command,
    started,
    stop_cleanly_on_sigterm,
    wait_until_serving,
)
from benchmarks.mixed_load import (
    Account,
    Client,
    Operation,
    Outcome,
    Receiver,
    Service,
    answers,
    bridge,
    invoice,
    joined,
    postgres_errors,
    print_table,
    run_load,
    server_log_findings,
    set_up_account,
    status_label,
    time_limit,
    verdict,
)

WORKERS = 3
THREADS = 8
CONNECTIONS = 16
LOAD_SECONDS = 30
LEASE_SECONDS = 5
RECEIVER_DELAY = 0.2
WEB_KILL_AT = 8.0
DELIVERY_KILL_AT = 12.0
DELIVERY_RESTART_AT = 14.0
POSTGRES_STOP_AT = 8.0
POSTGRES_DOWN_SECONDS = 5.0
RECOVERY_TARGET = 5.0
# Delivery is bounded by the receiver's 0.2 s and one worker's 16 POSTs at a time (80 a second):
# waited for as long as it progresses, since "every event delivered" is about loss, not speed.
STALL_SECONDS = 20
DRAIN_LIMIT_SECONDS = 240
RUN_LIMIT_SECONDS = 720


# --- a private PostgreSQL cluster ---------------------------------------------------------


class PrivatePostgres:
    """A cluster of this run's own, in ``directory``: initdb, start, stop, restart."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.log = directory / "postgres.log"
        self.port = free_port()
        self.url = f"postgresql://postgres@{HOST}:{self.port}"
        installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not installed:
            raise SystemExit("PostgreSQL's server programs are needed (/usr/lib/postgresql)")
        self._bin = installed[-1].parent
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, program: str, *arguments: str, timeout: float = 90) -> None:
        command = [*self._as_postgres, str(self._bin / program), *arguments]
        # Output to a file: the server pg_ctl starts must not hold a pipe of ours open.
        with (self.directory / "commands.log").open("ab") as output:
            completed = subprocess.run(
                command,
                cwd=self.directory,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        if completed.returncode != 0:
            tail = (self.directory / "commands.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{program} {' '.join(arguments)} failed: {tail}")

    def _pg_ctl(self, action: str, *arguments: str) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            *arguments,
            action,
        )

    def create(self) -> None:
        if self._as_postgres:
            account = pwd.getpwnam("postgres")
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses={HOST} "
            "-c max_connections=200 -c log_line_prefix='%m [%p] %q%u@%d '"
        )
        (self.directory / "options").write_text(options)
        self.start()

    def start(self) -> None:
        self._pg_ctl("start", "-o", (self.directory / "options").read_text())

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-m", mode)

    def ensure_stopped(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "immediate")

    def query(self, database: str, statement: str) -> list[tuple]:
        with psycopg.connect(f"{self.url}/{database}", autocommit=True) as connection:
            cursor = connection.execute(statement)
            return cursor.fetchall() if cursor.description is not None else []


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    directory = Path(tempfile.mkdtemp(prefix="faults-postgres-"))
    cluster = PrivatePostgres(directory)
    try:
        cluster.create()
        yield cluster
    finally:
        try:
            cluster.ensure_stopped()
        finally:
            shutil.rmtree(directory, ignore_errors=True)


# --- the deployment under test ------------------------------------------------------------


@dataclass
class Deployment:
    cluster: PrivatePostgres
    service: Service
    account: Account
    receiver: Receiver
    url: str
    server: subprocess.Popen[bytes]
    work: Path
    stack: ExitStack
    delivery_workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def server_log(self) -> Path:
        return self.work / "server.log"

    def start_delivery_worker(self) -> subprocess.Popen[bytes]:
        number = len(self.delivery_workers) + 1
        process = self.stack.enter_context(
            started(
                bridge("worker"), env=self.service.env(), log=self.work / f"worker-{number}.log"
            )
        )
        self.delivery_workers.append(process)
        return process

    def documents(self) -> set[str]:
        return {row[0] for row in self.cluster.query("bridge", "SELECT id FROM documents")}

    def deliveries(self) -> Counter[str]:
        rows = self.cluster.query("bridge", "SELECT status, count(*) FROM deliveries GROUP BY 1")
        return Counter({status: count for status, count in rows})

    def attempts(self, delivery_ids: Sequence[str]) -> dict[str, list[tuple]]:
        """The attempts recorded for deliveries: (attempted_at, status_code, error), in order."""
        found: dict[str, list[tuple]] = {delivery_id: [] for delivery_id in delivery_ids}
        if delivery_ids:
            quoted = ", ".join(f"'{delivery_id}'" for delivery_id in delivery_ids)  # our own ids
            statement = (
                "SELECT delivery_id, attempted_at, status_code, error FROM delivery_attempts "
                f"WHERE delivery_id IN ({quoted}) ORDER BY id"
            )
            for delivery_id, *attempt in self.cluster.query("bridge", statement):
                found[delivery_id].append(tuple(attempt))
        return found

    def leased(self) -> list[str]:
        """The deliveries leased by a worker right now (sent or being sent, outcome unwritten)."""
        statement = "SELECT id FROM deliveries WHERE lease_until > now()"
        return [row[0] for row in self.cluster.query("bridge", statement)]


@contextmanager
def deployment(cluster: PrivatePostgres, work: Path) -> Iterator[Deployment]:
    cluster.query("postgres", "CREATE DATABASE bridge")
    service = Service(
        f"{cluster.url}/bridge",
        work / "data",
        "faults-" + os.urandom(16).hex(),
        {"BRIDGE_DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS)},
    )
    service.init(work / "init.log")
    account = set_up_account(service, "Faults Ltd")
    with ExitStack() as stack:
        receiver = stack.enter_context(Receiver(delay=RECEIVER_DELAY).running())
        port = free_port()
        url = f"http://{HOST}:{port}"
        command = serve_command(port, WORKERS, THREADS, deliver=False)
        server = stack.enter_context(
            started(command, env=service.env(port), log=work / "server.log")
        )
        wait_until_serving(url, server, work / "server.log")
        # The first worker answers while gunicorn may still be forking the others.
        deadline = time.monotonic() + 30
        while len(children(server.pid)) < WORKERS and time.monotonic() < deadline:
            time.sleep(0.1)
        hook = requests.post(
            f"{url}/v1/hooks",
            json={"target_url": f"{receiver.url}/hook", "events": ["document.created"]},
            headers={"X-Api-Key": account.key},
            timeout=10,
        )
        hook.raise_for_status()
        receiver.secret = hook.json()["secret"]
        found = Deployment(cluster, service, account, receiver, url, server, work, stack)
        found.start_delivery_worker()
        yield found


def load_mix(account: Account, created: list[str]) -> list[tuple[Operation, float]]:
    """Auth tests and TXT renders, half and half; ``created`` collects the ids of the 201s."""

    def auth_test(client: Client, _: random.Random) -> None:
        client.call("auth test", "GET", "/v1/me", 200, key=account.key)

    def render(client: Client, chance: random.Random) -> None:
        body = {
            "template_id": account.template_id,
            "format": "txt",
            "data": invoice(chance.randrange(10_000)),
        }
        answer = client.call("render TXT", "POST", "/v1/documents", 201, key=account.key, json=body)
        if answer is not None and answer.status_code == 201:
            created.append(answer.json()["id"])

    return [(auth_test, 1), (render, 1)]


class Timeline:
    """Actions at set times from the start of the load, in a thread; records when each
    happened (time.monotonic())."""

    def __init__(self, actions: Sequence[tuple[float, str, Callable[[], object]]]) -> None:
        self.actions = actions
        self.happened: dict[str, tuple[float, float]] = {}  # name: (began, ended)
        self.results: dict[str, Any] = {}
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name="faults", daemon=True)

    def start(self) -> None:
        self._begun = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        for at, name, action in self.actions:
            time.sleep(max(0.0, self._begun + at - time.monotonic()))
            began = time.monotonic()
            try:
                self.results[name] = action()
            except Exception as error:  # reported as a failed expectation, never swallowed
                self.errors.append(f"{name}: {type(error).__name__}: {error}")
            self.happened[name] = (began, time.monotonic())

    def join(self) -> None:
        self._thread.join(120)

    def at(self, name: str, started_at: float) -> float:
        return self.happened[name][0] - started_at

    def done(self, name: str, started_at: float) -> float:
        return self.happened[name][1] - started_at


def wait_until_delivered(found: Deployment) -> tuple[set[str], set[str], float]:
    """Wait until the receiver has seen every document in the database and the outbox has
    nothing pending, or until deliveries stop making progress; returns the documents, those the
    receiver has not seen, and how long it took."""
    begun = last_progress = time.monotonic()
    seen = -1
    while True:
        documents = found.documents()
        missing = documents - set(found.receiver.documents)
        settled = not missing and not found.deliveries().get("pending")
        now = time.monotonic()
        if len(missing) != seen:
            seen, last_progress = len(missing), now
        stalled = now - last_progress > STALL_SECONDS
        if settled or stalled or now - begun > DRAIN_LIMIT_SECONDS:
            return documents, missing, now - begun
        time.sleep(0.5)


def delivery_report(found: Deployment, documents: set[str], drain: float) -> None:
    receiver = found.receiver
    twice = sum(1 for count in receiver.webhook_ids.values() if count > 1)
    extra = sum(count - 1 for count in receiver.webhook_ids.values() if count > 1)
    print(
        f"\ndocuments in the database: {len(documents):,}; webhook POSTs received: "
        f"{receiver.posts:,} for {len(receiver.webhook_ids):,} webhook ids ({twice} sent more "
        f"than once, {extra} extra POSTs); bad signatures: {receiver.bad_signatures}; all "
        f"delivered {drain:.1f} s after the load; deliveries by status: "
        f"{dict(found.deliveries())}"
    )


def status_timeline(outcomes: Sequence[Outcome], begin: float, end: float) -> None:
    """Answers per second (by start time) between ``begin`` and ``end``."""
    print("\n| second | answers |")
    print("|---|---|")
    second = int(begin)
    while second < end:
        statuses = answers([o for o in outcomes if second <= o.started < second + 1])
        print(f"| {second} to {second + 1} s | {joined(statuses)} |")
        second += 1


def wait_until_dead(pid: int, timeout: float = 5.0) -> float:
    """When ``pid`` is gone (a zombie or reaped): time.monotonic()."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            break
        if state in {"Z", "X"}:
            break
        time.sleep(0.001)
    return time.monotonic()


def failed(outcome: Outcome) -> bool:
    return outcome.status is None or outcome.status >= 500


# --- kill -9: a web worker, the delivery worker ----------------------------------------------


def kills(found: Deployment) -> bool:
    print(
        f"\n## kill -9: a web worker at {WEB_KILL_AT:g} s, the delivery worker at "
        f"{DELIVERY_KILL_AT:g} s (a new one at {DELIVERY_RESTART_AT:g} s)\n"
    )
    created: list[str] = []
    web_workers_before = children(found.server.pid)

    def kill_web_worker() -> tuple[int, float]:
        victim = random.choice(children(found.server.pid))
        os.kill(victim, 9)
        return victim, wait_until_dead(victim)

    def kill_delivery_worker() -> tuple[list[str], float]:
        # Kill it with deliveries in hand: between batches it may hold none for a moment.
        deadline = time.monotonic() + 3
        while not (leased := found.leased()) and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(found.delivery_workers[-1].pid, 9)
        return leased, time.monotonic()

    timeline = Timeline(
        [
            (WEB_KILL_AT, "web worker killed", kill_web_worker),
            (DELIVERY_KILL_AT, "delivery worker killed", kill_delivery_worker),
            (DELIVERY_RESTART_AT, "delivery worker started", found.start_delivery_worker),
        ]
    )
    timeline.start()
    outcomes, started_at = run_load(
        found.url,
        connections=CONNECTIONS,
        seconds=LOAD_SECONDS,
        mix=load_mix(found.account, created),
    )
    timeline.join()
    documents, missing, drain = wait_until_delivered(found)
    respawned = children(found.server.pid)

    kill_at = timeline.at("web worker killed", started_at)
    victim, died = timeline.results.get("web worker killed") or (0, 0.0)
    dead_at = died - started_at
    # In flight: sent before the worker was gone (it takes a moment to die under load) and
    # not answered before the SIGKILL.
    in_flight = [o for o in outcomes if o.started <= dead_at and o.started + o.seconds >= kill_at]
    failures = [o for o in outcomes if failed(o)]
    outside = [o for o in failures if o not in in_flight]
    phases = {
        "answered before the web worker's kill": [
            o for o in outcomes if o.started + o.seconds < kill_at
        ],
        "in flight at the kill": in_flight,
        "sent after the worker was gone": [o for o in outcomes if o.started > dead_at],
    }
    print("| phase | requests | answers |")
    print("|---|---|---|")
    for name, group in phases.items():
        print(f"| {name} | {len(group):,} | {joined(answers(group))} |")
    print()
    print_table(outcomes, LOAD_SECONDS)
    print(
        f"\nweb workers {web_workers_before}; SIGKILL to {victim} at {kill_at:.2f} s, gone at "
        f"{dead_at:.2f} s; workers after: {respawned}. Requests in flight at the kill (all "
        f"workers): {len(in_flight)}, {sum(o.started > kill_at for o in in_flight)} of them sent "
        f"while it was dying; failed requests: {len(failures)} "
        f"({answers(failures)}), of which in flight at the kill: "
        f"{len(failures) - len(outside)}"
    )
    leased, killed = timeline.results.get("delivery worker killed") or ([], 0.0)
    arrivals = found.receiver.arrivals
    sent_before = [i for i in leased if arrivals[i] and arrivals[i][0] <= killed]
    again = sorted(arrivals[i][1] - killed for i in sent_before if len(arrivals[i]) > 1)
    recorded = found.attempts(leased)
    print(
        f"delivery worker killed at {timeline.at('delivery worker killed', started_at):.2f} s "
        f"holding {len(leased)} leased deliveries, {len(sent_before)} of them already at the "
        f"receiver (sent again: {len(again)}, "
        + (f"{min(again):.1f} to {max(again):.1f} s after the kill" if again else "none")
        + f"); a new worker started at {timeline.at('delivery worker started', started_at):.2f} s; "
        f"connections the receiver saw break: {found.receiver.broken_connections}"
    )
    print(
        "    sent again after (s): "
        + ", ".join(f"{delay:.1f}" for delay in again)
        + "; attempts recorded for them: "
        + joined(
            Counter(f"{len(a)} ({', '.join(str(x[1]) for x in a)})" for a in recorded.values())
        )
    )
    for attempt in [x for a in recorded.values() for x in a if x[2]][:3]:
        print(f"    a failed attempt: {attempt[2][:200]}")
    restarted = found.delivery_workers[-1]
    resumed = min((t for times in arrivals.values() for t in times if t > killed), default=None)
    print(
        f"    deliveries resumed {resumed - killed:.1f} s after the kill"
        if resumed is not None
        else "    deliveries never resumed",
        f"(new worker pid {restarted.pid})",
    )
    delivery_report(found, documents, drain)
    created_rows = set(created) - documents
    print(
        f"documents committed whose answer was lost (no 201 seen): {len(documents - set(created))}"
    )
    print()
    return all(
        [
            verdict("faults injected", not timeline.errors, "; ".join(timeline.errors) or "all 3"),
            verdict(
                "only requests in flight at the web worker's kill failed",
                not outside,
                f"{len(failures)} failed, {len(outside)} of them not in flight at the kill: "
                + ", ".join(
                    f"{o.operation} at {o.started:.2f} s {status_label(o)}" for o in outside[:5]
                ),
            ),
            verdict(
                "gunicorn replaced the killed worker",
                len(respawned) == len(web_workers_before),
                f"{len(respawned)} workers after, {len(web_workers_before)} before",
            ),
            verdict(
                "every 201 has its document row", not created_rows, f"{len(created_rows)} missing"
            ),
            verdict(
                "every document's event delivered",
                not missing,
                f"{len(documents) - len(missing):,} of {len(documents):,}, {drain:.1f} s after "
                f"the load's end (waited while deliveries progressed: at most {STALL_SECONDS} s "
                f"without one, {DRAIN_LIMIT_SECONDS} s in all)",
            ),
            verdict(
                "every delivery recorded as succeeded",
                set(found.deliveries()) == {"succeeded"},
                f"deliveries by status: {dict(found.deliveries())}",
            ),
            verdict(
                "every signature verifies",
                found.receiver.bad_signatures == 0,
                f"{found.receiver.bad_signatures} bad",
            ),
        ]
    )


# --- restarting PostgreSQL ----------------------------------------------------------------


def probe_readiness(url: str, stop: threading.Event, seen: list[tuple[float, int]]) -> None:
    while not stop.is_set():
        try:
            seen.append((time.monotonic(), requests.get(f"{url}/readyz", timeout=5).status_code))
        except requests.RequestException:
            seen.append((time.monotonic(), 0))
        stop.wait(0.25)


def restart(found: Deployment) -> bool:
    print(
        f"\n## PostgreSQL stopped (pg_ctl stop -m fast) at {POSTGRES_STOP_AT:g} s, started again "
        f"{POSTGRES_DOWN_SECONDS:g} s later\n"
    )
    created: list[str] = []
    posts_before = found.receiver.posts
    documents_before = found.documents()
    web_workers = children(found.server.pid)
    timeline = Timeline(
        [
            (POSTGRES_STOP_AT, "stopped", found.cluster.stop),
            (POSTGRES_STOP_AT + POSTGRES_DOWN_SECONDS, "started", found.cluster.start),
        ]
    )
    stop_probing = threading.Event()
    readiness: list[tuple[float, int]] = []
    prober = threading.Thread(
        target=probe_readiness, args=(found.url, stop_probing, readiness), daemon=True
    )
    prober.start()
    timeline.start()
    try:
        outcomes, started_at = run_load(
            found.url,
            connections=CONNECTIONS,
            seconds=LOAD_SECONDS,
            mix=load_mix(found.account, created),
        )
    finally:
        timeline.join()
        stop_probing.set()
        prober.join(10)
    documents, missing, drain = wait_until_delivered(found)

    stop_began = timeline.at("stopped", started_at)
    stop_ended = timeline.done("stopped", started_at)
    up = timeline.done("started", started_at)
    before = [o for o in outcomes if o.started + o.seconds < stop_began]
    after = [o for o in outcomes if o.started >= up]
    during = [o for o in outcomes if o not in before and o not in after]
    phases = {
        "before the stop": before,
        "stopping, down, starting": during,
        "after it is back": after,
    }

    def proper_503(o: Outcome) -> bool:
        return (
            o.status == 503
            and o.detail == "storage_unavailable"
            and o.json_error
            and (o.retry_after or "").isdigit()
        )

    print("| phase | requests | answers |")
    print("|---|---|---|")
    for name, group in phases.items():
        print(f"| {name} | {len(group):,} | {joined(answers(group))} |")
    status_timeline(outcomes, max(0.0, stop_began - 2), up + 8)
    print()
    print_table(outcomes, LOAD_SECONDS)

    late_failures = [o for o in after if not o.expected]
    recovery = max((o.started - up for o in late_failures), default=0.0)
    ready_again = next(
        (
            at - started_at - up
            for at, status in readiness
            if at - started_at >= up and status == 200
        ),
        None,
    )
    not_ready = [at - started_at for at, status in readiness if status != 200]
    other_5xx = [o for o in outcomes if failed(o) and not proper_503(o)]
    improper_down = [o for o in during if not (200 <= (o.status or 0) < 300 or proper_503(o))]
    missing_rows = set(created) - documents
    unanswered = documents - documents_before - set(created)
    print(
        f"\nstop began {stop_began:.2f} s, stopped {stop_ended:.2f} s, back (pg_ctl start "
        f"returned) {up:.2f} s; last answer that was not the one asked for began "
        f"{recovery:.2f} s after PostgreSQL was back; /readyz answered 200 again "
        + (f"{ready_again:.2f} s after" if ready_again is not None else "NEVER")
        + f" (not ready from {min(not_ready, default=0):.2f} s "
        f"to {max(not_ready, default=0):.2f} s)"
    )
    delivery_report(found, documents, drain)
    print(
        f"webhook POSTs during this scenario: {found.receiver.posts - posts_before:,}; documents "
        f"committed whose answer was lost (no 201 seen): {len(unanswered)}"
    )
    print()
    return all(
        [
            verdict(
                "PostgreSQL stopped and started",
                not timeline.errors,
                "; ".join(timeline.errors) or "pg_ctl stop -m fast, pg_ctl start",
            ),
            verdict(
                "all 2xx before the stop",
                all(o.expected for o in before),
                f"{sum(not o.expected for o in before)} other of {len(before):,}",
            ),
            verdict(
                "while down: 503 JSON with Retry-After (or a 2xx), nothing else",
                not improper_down and any(proper_503(o) for o in during),
                f"{sum(proper_503(o) for o in during):,} such 503s, Retry-After "
                f"{sorted({o.retry_after or '' for o in during if proper_503(o)})}, "
                f"{len(improper_down)} other: {answers(improper_down)}",
            ),
            verdict(
                "no other 5xx, no connection errors, at any time",
                not other_5xx,
                f"{len(other_5xx)}: {answers(other_5xx)}",
            ),
            verdict(
                f"full recovery within {RECOVERY_TARGET:g} s of PostgreSQL being back",
                recovery <= RECOVERY_TARGET and ready_again is not None,
                f"last failure {recovery:.2f} s after; {len(after) - len(late_failures):,} of "
                f"{len(after):,} answers after it was back were 2xx",
            ),
            verdict(
                "no process died (same web workers, delivery worker up)",
                children(found.server.pid) == web_workers
                and found.delivery_workers[-1].poll() is None,
                f"web workers {web_workers} before, {children(found.server.pid)} after",
            ),
            verdict(
                "every 201 has its document row",
                not missing_rows,
                f"{len(missing_rows)} of {len(created):,} missing",
            ),
            verdict(
                "every document's event delivered",
                not missing,
                f"{len(documents) - len(missing):,} of {len(documents):,} "
                f"({drain:.1f} s after the load)",
            ),
            verdict(
                "every delivery recorded as succeeded",
                set(found.deliveries()) == {"succeeded"},
                f"deliveries by status: {dict(found.deliveries())}",
            ),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=["kills", "restart", "both"], default="both")
    arguments = parser.parse_args()
    stop_cleanly_on_sigterm()
    results: dict[str, bool] = {}
    with (
        time_limit(RUN_LIMIT_SECONDS),
        tempfile.TemporaryDirectory(prefix="faults-") as work_dir,
        private_postgres() as cluster,
    ):
        work = Path(work_dir)
        print(
            f"private PostgreSQL on {HOST}:{cluster.port}; gunicorn gthread {WORKERS} workers x "
            f"{THREADS} threads --no-delivery, 1 delivery worker, lease {LEASE_SECONDS} s; "
            f"{CONNECTIONS} connections, closed loop, auth tests and TXT renders half and half, "
            f"{LOAD_SECONDS} s per scenario; receiver answers after {RECEIVER_DELAY:g} s"
        )
        with deployment(cluster, work) as found:
            if arguments.scenario in {"kills", "both"}:
                results["kills"] = kills(found)
            if arguments.scenario in {"restart", "both"}:
                results["restart"] = restart(found)
            alive = found.server.poll() is None
        levels, notable = server_log_findings(found.server_log)
        worker_logs = sorted(work.glob("worker-*.log"))
        print(f"server log lines by level: {dict(levels)}")
        for line in notable:
            print(f"    {line}")
        for log in worker_logs:
            worker_levels, worker_notable = server_log_findings(log, limit=4)
            print(f"{log.name} lines by level: {dict(worker_levels)}")
            for line in worker_notable:
                print(f"    {line}")
        errors, example = postgres_errors([cluster.log], "bridge")
        print(f"PostgreSQL's log, ERROR lines: {dict(errors) or 'none'}")
        for block in example:
            print("    " + block.replace("\n", "\n    "))
    print()
    results["server up at the end"] = verdict("gunicorn master still up", alive, "at the end")
    print("\n" + ", ".join(f"{name}: {'PASS' if ok else 'FAIL'}" for name, ok in results.items()))
    sys.exit(0 if all(results.values()) else 1)


if __name__ == "__main__":
    main()
