"""Mixed load on PostgreSQL: 60 s of auth tests, Zapier polling, renders and hook subscriptions
from 64 connections at once, with no 5xx and no error that was not asked for.

    python -m benchmarks.mixed_load                  # 60 s, 64 connections
    python -m benchmarks.mixed_load --seconds 20

``templateto-bridge serve`` (gunicorn, 2 workers x 16 threads, webhook delivery in the workers)
runs on a throwaway ``mixed_<pid>`` database of the shared PostgreSQL on 127.0.0.1:5432 (only
the database is created and dropped; the server is never touched), with Redis on
127.0.0.1:6379 for the abuse limits. 64 client threads, each with its own keep-alive connection,
pick operations at random, closed loop (the next request as soon as the answer is in):

- auth test, 40 %: ``GET /v1/me``; one in 20 with a deleted key, which must get its 401;
- polling, 35 %: ``GET /zapier/triggers/new_document`` as Zapier;
- render, 15 %: ``POST /v1/documents``, TXT, one in 10 PDF; one in 20 strict with a missing
  variable, which must get its 422;
- hook subscription, 10 %: ``POST /zapier/hooks`` to a receiver on 127.0.0.1, then its DELETE.

Every answer must be the one asked for; any 5xx, any other status and any connection error fail
the run (exit status 1). Prints counts by operation and status, latency percentiles, and the
server's log lines above INFO and PostgreSQL's deadlocks. The helpers (a webhook receiver, the
load client, tables) are shared with ``benchmarks.faults``; processes are ``benchmarks.live``'s.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import requests
from requests.adapters import HTTPAdapter

from benchmarks.live import (
    HOST,
    REPOSITORY,
    free_port,
    postgres_database,
    serve_command,
    started,
    stop_cleanly_on_sigterm,
    wait_until_serving,
)
from connector.config import load_settings
from connector.services import Services
from connector.templates import TemplateFields
from connector.webhooks import signing

REDIS_URL = "redis://127.0.0.1:6379/0"
# Far above what a run makes. The rates are also part of the limits' Redis keys, so these
# unusual ones give the runs counters of their own on the shared Redis (key ids are unique too).
UNLIMITED = {
    "BRIDGE_RATE_LIMIT_PER_KEY": "100000000/minute",
    "BRIDGE_FAILED_AUTH_LIMIT_PER_ADDRESS": "100000001/minute",
    "BRIDGE_FAILED_AUTH_LIMIT_PER_KEY_VALUE": "100000002/minute",
}
REQUEST_TIMEOUT = (5, 40)  # connect, read: a PDF may wait up to 30 s for a slot
TEXT_BODY = "Invoice {{ number }} for {{ customer.name }}\nTotal: {{ total }} EUR\n"
HTML_BODY = (
    "<html><body><h1>Invoice {{ number }}</h1><p>{{ customer.name }}</p>"
    "<table>{% for line in lines %}<tr><td>{{ line.item }}</td><td>{{ line.price }}</td></tr>"
    "{% endfor %}</table><p><strong>Total: {{ total }} EUR</strong></p></body></html>"
)


# --- the service: its settings, a receiver -------------------------------------------------


@dataclass(frozen=True)
class Service:
    """What the processes of one deployment share: database, data directory, secret."""

    database_url: str
    data_dir: Path
    secret_key: str
    extra: Mapping[str, str] = field(default_factory=dict)

    def env(self, port: int | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "TEMPLATETO_"))}
        env.update(
            BRIDGE_DATABASE_URL=self.database_url,
            BRIDGE_DATA_DIR=str(self.data_dir),
            BRIDGE_SECRET_KEY=self.secret_key,
            BRIDGE_ALLOW_PRIVATE_HOOK_TARGETS="1",
            BRIDGE_REDIS_URL=REDIS_URL,
        )
        env.update(UNLIMITED)
        env.update(self.extra)  # last: a run's own settings win
        if port is not None:
            env["BRIDGE_PUBLIC_URL"] = f"http://{HOST}:{port}"
        return env

    def init(self, log: Path) -> None:
        """``templateto-bridge init``: the schema, as an operator creates it."""
        with log.open("ab") as log_file:
            subprocess.run(
                bridge("init"),
                env=self.env(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=REPOSITORY,
                check=True,
                timeout=120,
            )

    @contextmanager
    def services(self) -> Iterator[Services]:
        """The service's objects in this process: to set up accounts, keys and templates."""
        settings = load_settings(
            data_dir=self.data_dir,
            database_url=self.database_url,
            secret_key=self.secret_key,
            allow_private_hook_targets=True,
        )
        built = Services.build(settings)
        try:
            yield built
        finally:
            built.close()


def bridge(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "connector", *arguments]


class _QuietServer(ThreadingHTTPServer):
    """Counts connections that break (a sender killed mid-request) instead of printing them."""

    # The default listen backlog (5) drops connections when a fresh delivery worker opens 16 at
    # once; a real receiver's is larger.
    request_queue_size = 128
    on_error: Callable[[], None] = staticmethod(lambda: None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.on_error()


class Receiver:
    """A webhook receiver on 127.0.0.1: answers 204 after ``delay`` seconds and counts what
    arrives: ``webhook-id`` headers (with their arrival times), the document ids in the bodies,
    and bodies whose signature does not verify (with ``secret``, once set)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.secret: str | None = None
        self.posts = 0
        self.bad_signatures = 0
        self.webhook_ids: Counter[str] = Counter()
        self.documents: Counter[str] = Counter()
        self.arrivals: dict[str, list[float]] = defaultdict(list)  # webhook id: monotonic times
        self.broken_connections = 0
        self._lock = threading.Lock()
        self._server = _QuietServer((HOST, 0), self._handler())
        self._server.daemon_threads = True
        self._server.on_error = self._broken
        self.url = f"http://{HOST}:{self._server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver._note(self.headers, body)
                time.sleep(receiver.delay)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        return Handler

    def _note(self, headers: Any, body: bytes) -> None:
        webhook_id = headers.get("webhook-id", "")
        try:
            payload = json.loads(body)
            # The core API's payload holds the document under "data"; Zapier's is flat.
            document = payload.get("data", payload)
            document_id = str(document.get("id", ""))
        except (ValueError, TypeError, KeyError, AttributeError):
            document_id = ""
        valid = True
        if self.secret is not None:
            expected = signing.signature(
                self.secret, webhook_id, int(headers.get("webhook-timestamp", "0") or 0), body
            )
            valid = expected == headers.get("webhook-signature")
        with self._lock:
            self.posts += 1
            self.webhook_ids[webhook_id] += 1
            self.arrivals[webhook_id].append(time.monotonic())
            if document_id:
                self.documents[document_id] += 1
            if not valid:
                self.bad_signatures += 1

    def _broken(self) -> None:
        with self._lock:
            self.broken_connections += 1

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


@dataclass(frozen=True)
class Account:
    key: str
    deleted_key: str
    template_id: str


def set_up_account(service: Service, name: str) -> Account:
    """An account with a working key, a deleted one and an invoice template (TXT and PDF)."""
    with service.services() as services:
        account = services.accounts.create(name)
        key = services.keys.create(account.id, "Load").value
        gone = services.keys.create(account.id, "Deleted")
        services.keys.delete(account.id, gone.id)
        template = services.templates.create(
            account.id, TemplateFields(name="Invoice", body=HTML_BODY, text_body=TEXT_BODY)
        )
    return Account(key, gone.value, template.id)


def invoice(number: int) -> dict[str, Any]:
    return {
        "number": number,
        "customer": {"name": f"Customer {number % 97}"},
        "lines": [{"item": f"Item {n}", "price": 10 + n} for n in range(5)],
        "total": 60,
    }


# Said by every process at start because the receivers listen on 127.0.0.1: expected here.
EXPECTED_WARNING = "BRIDGE_ALLOW_PRIVATE_HOOK_TARGETS is on"


def server_log_findings(log: Path, limit: int = 8) -> tuple[Counter[str], list[str]]:
    """Lines of a server log by level, and the first ``limit`` above INFO (or not JSON),
    leaving out the expected warning about private hook targets."""
    levels: Counter[str] = Counter()
    notable: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        if EXPECTED_WARNING in line:
            continue
        try:
            level = str(json.loads(line).get("level", "?"))
        except ValueError:
            level = "not JSON"
        levels[level] += 1
        if level not in {"INFO", "DEBUG"} and len(notable) < limit:
            notable.append(line[:400])
    return levels, notable


SHARED_POSTGRES_LOGS = Path("/var/log/postgresql")


def postgres_errors(
    log_files: Sequence[Path], database: str, examples: int = 1
) -> tuple[Counter[str], list[str]]:
    """ERROR lines of PostgreSQL's log for ``database``, by message, and the first
    ``examples`` of them in full (with their DETAIL and statement lines). Empty when the log
    cannot be read."""
    errors: Counter[str] = Counter()
    shown: list[str] = []
    block: list[str] | None = None
    for log_file in log_files:
        try:
            lines = log_file.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            ours = f"@{database} " in line
            if ours and " ERROR:  " in line:
                errors[line.split(" ERROR:  ", 1)[1].strip()] += 1
                block = [line] if len(shown) < examples else None
                if block is not None:
                    shown.append("")
            elif block is not None and (line.startswith("\t") or (ours and "ERROR" not in line)):
                block.append(line)
                shown[-1] = "\n".join(block)
            else:
                block = None
    return errors, shown


# --- the load: client threads and what they saw -------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    operation: str
    started: float  # seconds since the load started
    seconds: float
    status: int | None  # None: no HTTP answer (connection refused or reset, timeout)
    detail: str  # the error code of a JSON error, or the exception's name
    expected: bool
    retry_after: str | None = None
    json_error: bool = False


class Client:
    """One connection's view of the service: times each call and says whether its answer was
    the one asked for."""

    def __init__(self, url: str, started_at: float, outcomes: list[Outcome]) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=1))
        self._started_at = started_at
        self._outcomes = outcomes

    def call(
        self,
        operation: str,
        method: str,
        path: str,
        expect: int | Sequence[int],
        *,
        key: str,
        expect_code: str | None = None,
        may_shed: bool = False,
        **kwargs: Any,
    ) -> requests.Response | None:
        """``may_shed``: a PDF render may also get the documented 429 render_busy with a
        Retry-After (the PDF slots shedding load), which is an answer asked for."""
        expected = {expect} if isinstance(expect, int) else set(expect)
        headers = {"X-Api-Key": key, **kwargs.pop("headers", {})}
        begun = time.monotonic()
        try:
            response = self.session.request(
                method, self.url + path, headers=headers, timeout=REQUEST_TIMEOUT, **kwargs
            )
        except requests.RequestException as error:
            self._outcomes.append(
                Outcome(
                    operation,
                    begun - self._started_at,
                    time.monotonic() - begun,
                    None,
                    type(error).__name__,
                    False,
                )
            )
            return None
        elapsed = time.monotonic() - begun
        code, is_json = "", False
        if response.status_code >= 400:
            try:
                code = str(response.json()["error"]["code"])
                is_json = True
            except (ValueError, KeyError, TypeError):
                code = response.text[:80]
        ok = response.status_code in expected and (expect_code is None or code == expect_code)
        shed = (
            may_shed
            and response.status_code == 429
            and code == "render_busy"
            and response.headers.get("Retry-After", "").isdigit()
        )
        ok = ok or shed
        self._outcomes.append(
            Outcome(
                operation,
                begun - self._started_at,
                elapsed,
                response.status_code,
                code,
                ok,
                response.headers.get("Retry-After"),
                is_json,
            )
        )
        return response


Operation = Callable[[Client, random.Random], None]


def run_load(
    url: str,
    *,
    connections: int,
    seconds: float,
    mix: Sequence[tuple[Operation, float]],
    stop_early: threading.Event | None = None,
) -> tuple[list[Outcome], float]:
    """``connections`` threads calling operations picked by weight until ``seconds`` pass;
    returns every outcome and when the load started (time.monotonic())."""
    outcomes: list[Outcome] = []  # list.append is atomic: no lock needed
    operations = [operation for operation, _ in mix]
    weights = [weight for _, weight in mix]
    started_at = time.monotonic()
    deadline = started_at + seconds
    stop_now = stop_early or threading.Event()

    def connection(number: int) -> None:
        client = Client(url, started_at, outcomes)
        chance = random.Random(number)
        while time.monotonic() < deadline and not stop_now.is_set():
            chance.choices(operations, weights)[0](client, chance)
        client.session.close()

    threads = [
        threading.Thread(target=connection, args=(n,), name=f"load-{n}", daemon=True)
        for n in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + REQUEST_TIMEOUT[1] + 30)
    return outcomes, started_at


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def status_label(outcome: Outcome) -> str:
    return str(outcome.status) if outcome.status is not None else f"no answer ({outcome.detail})"


def answers(outcomes: Sequence[Outcome]) -> dict[str, int]:
    """How many of each answer: the status and error code, or why there was none."""
    return dict(
        Counter(
            status_label(o) + (f" {o.detail}" if o.status and o.status >= 400 else "")
            for o in outcomes
        )
    )


def joined(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{label}: {count:,}" for label, count in sorted(counts.items()))


def print_table(outcomes: Sequence[Outcome], seconds: float) -> None:
    by_operation: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_operation[outcome.operation].append(outcome)
    print(
        "| operation | requests | per second | statuses | not asked for | p50 | p95 | p99 | max |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for operation in sorted(by_operation, key=lambda o: -len(by_operation[o])):
        group = by_operation[operation]
        latencies = sorted(o.seconds * 1e3 for o in group)
        print(
            f"| {operation} | {len(group):,} | {len(group) / seconds:.1f} | "
            + joined(answers(group))
            + f" | {sum(not o.expected for o in group)} | {percentile(latencies, 0.50):.1f} ms | "
            f"{percentile(latencies, 0.95):.1f} ms | {percentile(latencies, 0.99):.1f} ms | "
            f"{latencies[-1]:.0f} ms |"
        )


def verdict(name: str, passed: bool, evidence: str) -> bool:
    print(f"- {'PASS' if passed else 'FAIL'}: {name} ({evidence})")
    return passed


class _TimeUp(Exception):
    pass


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """End the run (cleaning up on the way out) if it takes longer than ``seconds``."""

    def expired(*_: object) -> None:
        raise _TimeUp(f"the run took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --- the mixed load -----------------------------------------------------------------------


MIX = {"auth": 40.0, "polling": 35.0, "render": 15.0, "hooks": 10.0}


def parse_mix(text: str) -> dict[str, float]:
    """``auth=40,polling=35,render=15,hooks=10``: weights of the operations (0 leaves one out)."""
    weights = dict(MIX)
    for part in filter(None, text.split(",")):
        name, _, weight = part.partition("=")
        if name.strip() not in MIX:
            raise argparse.ArgumentTypeError(f"{name!r}: the operations are {', '.join(MIX)}")
        weights[name.strip()] = float(weight)
    return weights


def mixed_operations(
    account: Account, receiver_url: str, pdf_share: float, weights: Mapping[str, float]
) -> list[tuple[Operation, float]]:
    numbers = itertools.count(1)
    zapier = {"User-Agent": "Zapier"}

    def auth_test(client: Client, chance: random.Random) -> None:
        if chance.random() < 0.05:
            client.call(
                "auth test, deleted key (401 asked for)",
                "GET",
                "/v1/me",
                401,
                key=account.deleted_key,
                expect_code="api_key_deleted",
            )
        else:
            client.call("auth test", "GET", "/v1/me", 200, key=account.key)

    def polling(client: Client, _: random.Random) -> None:
        path = "/zapier/triggers/new_document"
        client.call("polling", "GET", path, 200, key=account.key, headers=zapier)

    def render(client: Client, chance: random.Random) -> None:
        number = next(numbers)
        body = {"template_id": account.template_id, "format": "txt", "data": invoice(number)}
        draw = chance.random()
        if draw < 0.05:
            client.call(
                "render, missing variable (422 asked for)",
                "POST",
                "/v1/documents",
                422,
                key=account.key,
                json={**body, "strict": True, "data": {"number": number}},
                expect_code="template_variable_missing",
            )
        elif draw < 0.05 + pdf_share:
            pdf = {**body, "format": "pdf"}
            client.call(
                "render PDF", "POST", "/v1/documents", 201, key=account.key, json=pdf, may_shed=True
            )
        else:
            client.call("render TXT", "POST", "/v1/documents", 201, key=account.key, json=body)

    def subscription(client: Client, _: random.Random) -> None:
        hook = {"target_url": f"{receiver_url}/zapier/{next(numbers)}", "event": "document.created"}
        created = client.call(
            "subscribe (REST hook)",
            "POST",
            "/zapier/hooks",
            201,
            key=account.key,
            json=hook,
            headers=zapier,
        )
        if created is not None and created.status_code == 201:
            path = f"/zapier/hooks/{created.json()['id']}"
            client.call(
                "unsubscribe (REST hook)", "DELETE", path, 200, key=account.key, headers=zapier
            )

    operations = {"auth": auth_test, "polling": polling, "render": render, "hooks": subscription}
    return [(operations[name], weight) for name, weight in weights.items() if weight > 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--pdf-share", type=float, default=0.10, help="of the renders")
    parser.add_argument(
        "--mix",
        type=parse_mix,
        default=MIX,
        help="operation weights, e.g. hooks=0 (default auth=40,polling=35,render=15,hooks=10)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="BRIDGE_NAME=VALUE",
        help="a setting for the server, e.g. BRIDGE_RENDER_QUEUE=8 (repeatable)",
    )
    arguments = parser.parse_args()
    settings = dict(item.split("=", 1) for item in arguments.env)
    stop_cleanly_on_sigterm()

    with (
        time_limit(arguments.seconds + 240),
        tempfile.TemporaryDirectory(prefix="mixed-load-") as work_dir,
        postgres_database(f"mixed_{os.getpid()}") as database_url,
        Receiver().running() as receiver,
    ):
        work = Path(work_dir)
        secret = "mixed-load-" + os.urandom(16).hex()
        service = Service(database_url, work / "data", secret, settings)
        server_log = work / "server.log"
        service.init(work / "init.log")
        account = set_up_account(service, "Mixed Load Ltd")
        port = free_port()
        url = f"http://{HOST}:{port}"
        command = serve_command(port, arguments.workers, arguments.threads)
        with started(command, env=service.env(port), log=server_log) as server:
            wait_until_serving(url, server, server_log)
            mix = mixed_operations(account, receiver.url, arguments.pdf_share, arguments.mix)
            run_load(url, connections=arguments.connections, seconds=3, mix=mix)  # warm-up
            outcomes, _ = run_load(
                url, connections=arguments.connections, seconds=arguments.seconds, mix=mix
            )
            alive = server.poll() is None
        levels, notable = server_log_findings(server_log)
        with psycopg.connect(database_url) as connection:
            hooks_left = connection.execute("SELECT count(*) FROM hooks").fetchone()
    database = f"mixed_{os.getpid()}"
    postgres, example = postgres_errors(sorted(SHARED_POSTGRES_LOGS.glob("*.log")), database)

    weights = ", ".join(f"{name} {weight:g}" for name, weight in arguments.mix.items())
    extra = "".join(f"; {name}={value}" for name, value in settings.items())
    print(
        f"PostgreSQL 127.0.0.1:5432 (database {database}), Redis abuse limits; gunicorn "
        f"gthread {arguments.workers} workers x {arguments.threads} threads, delivery in the "
        f"workers; {arguments.connections} connections, closed loop, {arguments.seconds} s "
        f"after a 3 s warm-up; mix {weights}, PDF {arguments.pdf_share:.0%} of the renders"
        f"{extra}\n"
    )
    print_table(outcomes, arguments.seconds)
    total = len(outcomes)
    server_errors = [o for o in outcomes if o.status is not None and o.status >= 500]
    unasked = [o for o in outcomes if not o.expected]
    print(
        f"\n{total:,} requests, {total / arguments.seconds:.0f} per second; webhook POSTs "
        f"received: {receiver.posts:,}; subscriptions left (every subscribe is followed by its "
        f"unsubscribe): {hooks_left[0] if hooks_left else '?'}; server log lines by level: "
        f"{dict(levels)}"
    )
    for line in notable:
        print(f"    {line}")
    if unasked:
        print("Answers not asked for (first 10):")
        for o in sorted(unasked, key=lambda o: o.started)[:10]:
            print(f"    {o.started:6.2f} s  {o.operation}: {joined(answers([o]))}")
    print(f"PostgreSQL's log, ERROR lines for {database}: {dict(postgres) or 'none'}")
    for block in example:
        print("    " + block.replace("\n", "\n    "))
    print()
    passed = all(
        [
            verdict("no 5xx", not server_errors, f"{len(server_errors)} of {total:,}"),
            verdict(
                "no error that was not asked for",
                not unasked,
                f"{len(unasked)} unexpected: {joined(answers(unasked)) or 'none'}",
            ),
            verdict("server still up", alive, "gunicorn master running at the end"),
        ]
    )
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
