"""The benchmarks' toolkit: throwaway databases, server processes on 127.0.0.1 and what they
use, a webhook receiver, load clients and what they saw, timing in one process, and the
Markdown tables the benchmarks print. Everything started here is stopped and dropped on the way
out, also when a run fails, is interrupted or passes its time limit."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import psycopg
import requests
from psycopg import sql
from requests.adapters import HTTPAdapter

from connector import schema
from connector.cli import serve as serve_cli
from connector.config import Settings, load_settings
from connector.rendering import Renderer, RenderLimits
from connector.rendering.engines import Engine
from connector.rendering.pool import RenderPool
from connector.rendering.slots import RenderSlots
from connector.services import Services
from connector.webhooks import signing

HOST = "127.0.0.1"
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
REPOSITORY = Path(__file__).resolve().parents[1]
# Abuse limits far above any run's load: a 429 would be measured as speed, or hide the code
# behind it.
UNLIMITED = {
    "BRIDGE_RATE_LIMIT_PER_KEY": "100000000/minute",
    "BRIDGE_FAILED_AUTH_LIMIT_PER_ADDRESS": "100000000/minute",
    "BRIDGE_FAILED_AUTH_LIMIT_PER_KEY_VALUE": "100000000/minute",
}
# As deployed on several machines: the abuse limits' counters in Redis; and webhooks allowed
# to reach the benchmarks' receivers on 127.0.0.1.
DEPLOYED = {
    **UNLIMITED,
    "BRIDGE_REDIS_URL": "redis://127.0.0.1:6379/0",
    "BRIDGE_ALLOW_PRIVATE_HOOK_TARGETS": "1",
}
# serve's option defaults (workers, threads), so that a benchmark follows them when they change.
SERVE_DEFAULTS: dict[str | None, Any] = {param.name: param.default for param in serve_cli.params}
READY_SECONDS, STOP_SECONDS = 90, 15


# --- processes ---------------------------------------------------------------------------------
def exit_cleanly(time_limit: int | None = None) -> None:
    """Turn SIGTERM, and SIGALRM after ``time_limit`` seconds, into SystemExit: the ``with``
    blocks on the way out still stop and drop what the run started."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if time_limit:
        signal.signal(signal.SIGALRM, lambda *_: sys.exit(f"over the {time_limit} s time limit"))
        signal.alarm(time_limit)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def processes() -> Iterator[tuple[int, list[str]]]:
    """Every process's pid and the fields of its /proc/<pid>/stat after the command name
    (state, ppid, pgrp, ...)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError):  # one that just ended
                yield int(entry.name), (entry / "stat").read_text().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (gunicorn's workers, for its master)."""
    return sorted(child for child, stat in processes() if int(stat[1]) == pid and stat[0] != "Z")


def rss_mb(pid: int) -> float:
    """The resident size of a process, 0 once it has ended."""
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]  # gunicorn's master, the leader of its process group
    log: Path

    def workers(self) -> list[int]:
        return children(self.process.pid)

    def group(self) -> dict[int, list[str]]:
        """The server's processes (gunicorn's master and workers, the render processes): the
        fields of their /proc/<pid>/stat, by pid."""
        return {pid: stat for pid, stat in processes() if int(stat[2]) == self.process.pid}


@contextmanager
def started(
    command: Sequence[str], *, env: Mapping[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` in a process group of its own, its output in ``log``; stop the whole
    group at the end (SIGTERM, then SIGKILL), also on failure."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=output, cwd=REPOSITORY, start_new_session=True
        )
    try:
        yield process
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with suppress(ProcessLookupError):
                os.killpg(process.pid, sig)  # with workers that outlived their master
            with suppress(subprocess.TimeoutExpired):
                process.wait(STOP_SECONDS)


@contextmanager
def running(
    command: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str],
    log: Path,
    workers: int,
    ready_path: str = "/readyz",
) -> Iterator[Server]:
    """Run the server ``command`` on ``port`` (see :func:`started`); yields it once all its
    ``workers`` are forked and ``ready_path`` answers 200 (for the service: database, schema
    and render processes ready) on every worker: many times in a row, on new connections, which
    the kernel spreads over the workers."""
    with started(command, env=env, log=log) as process:
        server = Server(f"http://{HOST}:{port}", process, log)
        wait_until_ready(server.url + ready_path, process, workers, log)
        yield server


def wait_until_ready(
    url: str,
    master: subprocess.Popen[bytes],
    workers: int,
    log: Path,
    within: float = READY_SECONDS,
) -> None:
    """Return once ``master`` has its ``workers`` and ``url`` has answered 200 on each: many
    times in a row, on new connections, which the kernel spreads over the workers (each binds
    its own socket and loads the app after, so a connection may wait for one still starting)."""
    deadline, in_a_row = time.monotonic() + within, 0
    while in_a_row < 10 * workers:
        ready = len(children(master.pid)) >= workers and _answers_200(url)
        in_a_row = in_a_row + 1 if ready else 0
        if master.poll() is not None or time.monotonic() > deadline:
            state = "exited" if master.poll() is not None else "is not ready"
            raise RuntimeError(f"the server at {url} {state}: {log.read_text()[-3000:]}")
        if not ready:
            time.sleep(0.2)


def _answers_200(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


# --- the service: its database, settings and server --------------------------------------------
@contextmanager
def workspace(database: Literal["sqlite", "postgresql"]) -> Iterator[tuple[Path, str]]:
    """A temporary directory (for logs; its ``data`` folder for the service's files) and the
    URL of a throwaway database: a SQLite file there, or ``bench_<pid>`` on the PostgreSQL at
    127.0.0.1:5432."""
    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        work = Path(directory)
        (work / "data").mkdir()
        if database == "sqlite":
            yield work, f"sqlite:///{work / 'data' / 'bridge.db'}"
            return
        name = f"bench_{os.getpid()}"
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(drop)  # a leftover of an earlier process with this pid
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield work, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
                admin.execute(drop)


@contextmanager
def bridge_services(database_url: str, data_dir: Path, **overrides: Any) -> Iterator[Services]:
    """The service's objects in this process, on the newest schema: to set up accounts, keys
    and rows before the server starts. ``overrides``: settings of this process only."""
    settings = load_settings(data_dir=data_dir, database_url=database_url, **overrides)
    services = Services.build(settings)
    try:
        schema.upgrade(services.db.engine)
        yield services
    finally:
        services.close()


def bridge_env(
    settings: Settings, port: int | None = None, extra: Mapping[str, str] = UNLIMITED
) -> dict[str, str]:
    """The environment of a ``templateto-bridge`` process on ``settings``' database and files
    (serving on ``port``), with ``extra`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "TEMPLATETO_"))}
    env.update(
        BRIDGE_DATA_DIR=str(settings.data_dir),
        BRIDGE_DATABASE_URL=settings.database_url,
        BRIDGE_SECRET_KEY=settings.secret_key.get_secret_value(),
        **extra,
    )
    if port is not None:
        env["BRIDGE_PUBLIC_URL"] = f"http://{HOST}:{port}"
    return env


@contextmanager
def served(
    settings: Settings,
    log: Path,
    *,
    workers: int = 2,
    threads: int | None = None,
    deliver: bool = True,
    extra: Mapping[str, str] = UNLIMITED,
) -> Iterator[Server]:
    """``templateto-bridge serve`` as users run it on ``settings``' database (webhook delivery
    in the workers unless not ``deliver``; serve's default threads unless ``threads``)."""
    port, threads = free_port(), threads or SERVE_DEFAULTS["threads"]
    command = [sys.executable, "-m", "connector", "serve", "--host", HOST, "--port", str(port),
               "--workers", str(workers), "--threads", str(threads)]  # fmt: skip
    command += [] if deliver else ["--no-delivery"]
    env = bridge_env(settings, port, extra)
    with running(command, port=port, env=env, log=log, workers=workers) as server:
        yield server


# --- a webhook receiver ------------------------------------------------------------------------
class Receiver(ThreadingHTTPServer):
    """A webhook receiver on 127.0.0.1 that answers 204 after ``delay`` seconds and records the
    arrival times of each ``webhook-id``. Once ``secret`` is set, it also counts the document
    ids in the bodies and the signatures that do not verify."""

    daemon_threads = True
    # Python's default listen backlog (5) refuses connections when a delivery worker opens 16
    # at once; a real receiver's is larger.
    request_queue_size = 128

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__((HOST, 0), _ReceiverHandler)
        self.url = f"http://{HOST}:{self.server_address[1]}"
        self.delay = delay
        self.secret: str | None = None
        self.arrivals: defaultdict[str, list[float]] = defaultdict(list)  # time.monotonic()s
        self.documents: Counter[str] = Counter()
        self.bad_signatures = 0
        self.lock = threading.Lock()

    @property
    def posts(self) -> int:
        return sum(len(times) for times in self.arrivals.values())

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a sender killed mid-request, as the kills scenario does: not worth a traceback

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        try:
            yield self
        finally:
            self.shutdown()
            self.server_close()


class _ReceiverHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver's
    server: Receiver

    def do_POST(self) -> None:
        receiver, headers = self.server, self.headers
        body = self.rfile.read(int(headers.get("Content-Length", 0)))
        webhook_id, document, valid = headers.get("webhook-id", ""), None, True
        if receiver.secret is not None:
            # The core API's payload holds the document under "data"; Zapier's is flat.
            payload = json.loads(body)
            document = payload.get("data", payload).get("id")
            timestamp = int(headers.get("webhook-timestamp") or 0)
            expected = signing.signature(receiver.secret, webhook_id, timestamp, body)
            valid = expected == headers.get("webhook-signature")
        with receiver.lock:
            receiver.arrivals[webhook_id].append(time.monotonic())
            if document:
                receiver.documents[document] += 1
            receiver.bad_signatures += not valid
        if receiver.delay:
            time.sleep(receiver.delay)
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


# --- load: client threads and what they saw ---------------------------------------------------

REQUEST_TIMEOUT = (5, 40)  # connect, read: a PDF may wait its turn for a render slot


@dataclass(frozen=True, slots=True)
class Outcome:
    operation: str
    started: float  # seconds since the load started
    seconds: float
    status: int | None  # None: no HTTP answer (refused, reset, timed out)
    code: str  # a JSON error's code, the start of another error body, or the exception's name
    expected: bool
    retry_after: str | None = None
    json_error: bool = False

    @property
    def answer(self) -> str:
        if self.status is None:
            return f"no answer ({self.code})"
        return f"{self.status} {self.code}" if self.status >= 400 else str(self.status)

    @property
    def failed(self) -> bool:
        return self.status is None or self.status >= 500


class Client:
    """One keep-alive connection's view of the service: times each call and says whether its
    answer was the one asked for."""

    def __init__(self, url: str, started_at: float, outcomes: list[Outcome]) -> None:
        self.url, self._started_at, self._outcomes = url, started_at, outcomes
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=1))

    def call(
        self,
        operation: str,
        method: str,
        path: str,
        expect: int,
        *,
        key: str,
        expect_code: str = "",
        may_shed: bool = False,
        **kwargs: Any,
    ) -> requests.Response | None:
        """``may_shed``: the documented ``429 render_busy`` with a Retry-After (render slots
        shedding load) is an answer asked for too."""
        headers = {"X-Api-Key": key, **kwargs.pop("headers", {})}
        begun = time.monotonic()
        response, status, code, is_json, retry_after = None, None, "", False, None
        try:
            response = self.session.request(
                method, self.url + path, headers=headers, timeout=REQUEST_TIMEOUT, **kwargs
            )
        except requests.RequestException as error:
            code = type(error).__name__
        else:
            status, retry_after = response.status_code, response.headers.get("Retry-After")
            if status >= 400:
                try:
                    code, is_json = str(response.json()["error"]["code"]), True
                except (ValueError, KeyError, TypeError):
                    code = response.text[:80]
        shed = may_shed and (status, code) == (429, "render_busy") and (retry_after or "").isdigit()
        expected = (status == expect and code == (expect_code or code)) or shed
        started, seconds = begun - self._started_at, time.monotonic() - begun
        outcome = Outcome(operation, started, seconds, status, code, expected, retry_after, is_json)
        self._outcomes.append(outcome)  # list.append is atomic: no lock for the threads' list
        return response


Operation = Callable[[Client, random.Random], None]


def run_load(
    url: str, *, connections: int, seconds: float, mix: Sequence[tuple[Operation, float]]
) -> tuple[list[Outcome], float]:
    """``connections`` threads, closed loop, calling operations picked by weight until
    ``seconds`` pass; returns every outcome and when the load started (time.monotonic())."""
    outcomes: list[Outcome] = []
    operations, weights = zip(*mix, strict=True)
    started_at = time.monotonic()

    def connection(number: int) -> None:
        client, chance = Client(url, started_at, outcomes), random.Random(number)
        while time.monotonic() < started_at + seconds:
            chance.choices(operations, weights)[0](client, chance)
        client.session.close()

    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(connection, range(connections)))
    return outcomes, started_at


# --- timing in this process --------------------------------------------------------------------
@contextmanager
def own_renderer(
    processes: int, *, warm: Engine | None = None, memory_mb: int = 512
) -> Iterator[Renderer]:
    """The service's renderer as ``serve`` starts one in a web worker (its default limits), with
    ``processes`` render processes and as many slots; closed after."""
    with tempfile.TemporaryDirectory(prefix="bench-slots-") as slots:
        renderer = Renderer(
            RenderPool(processes=processes, memory_mb=memory_mb, warm=warm),
            RenderSlots(Path(slots), capacity=processes, queue=4),
            RenderLimits(),
        )
        try:
            renderer.start()
            yield renderer
        finally:
            renderer.close()


def per_call_seconds(function: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls


def interleaved(
    ours: Callable[[], object], baseline: Callable[[], object], *, rounds: int, calls: int
) -> tuple[float, float]:
    """Medians of the per-call times of ``ours`` and ``baseline`` over ``rounds`` rounds of
    ``calls`` calls each, alternating, so that both see the same machine load."""
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for function, times in zip((ours, baseline), samples, strict=True):
            times.append(per_call_seconds(function, calls))
    return statistics.median(samples[0]), statistics.median(samples[1])


# --- what the runs print -----------------------------------------------------------------------
def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` quantile of ``values`` (0.99: the p99), interpolated between neighbours."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def table(header: str, rows: Iterable[Sequence[object]]) -> None:
    """A Markdown table; ``header``: its column names as in Markdown, ``a | b | c``."""
    print(f"| {header} |\n|{'---|' * (header.count('|') + 1)}")
    for row in rows:
        print(f"| {' | '.join(f'{c:,}' if isinstance(c, int) else str(c) for c in row)} |")


def answers(outcomes: Iterable[Outcome]) -> str:
    """How many of each answer: ``200: 1,183, 503 storage_unavailable: 7``."""
    counts = Counter(outcome.answer for outcome in outcomes)
    return ", ".join(f"{answer}: {count:,}" for answer, count in sorted(counts.items()))


def phases_table(phases: Mapping[str, Sequence[Outcome]]) -> None:
    rows = [(name, f"{len(group):,}", answers(group)) for name, group in phases.items()]
    table("phase | requests | answers", rows)


def latency_table(outcomes: Sequence[Outcome], seconds: float) -> None:
    """Requests, answers and latencies by operation, the busiest first."""
    by_operation: defaultdict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_operation[outcome.operation].append(outcome)
    rows = []
    for operation, group in sorted(by_operation.items(), key=lambda item: -len(item[1])):
        ms = [o.seconds * 1e3 for o in group]
        rows.append(
            [operation, f"{len(group):,}", f"{len(group) / seconds:.1f}", answers(group),
             sum(not o.expected for o in group)]
            + [f"{percentile(ms, share):,.0f} ms" for share in (0.5, 0.95, 0.99)]
            + [f"{max(ms):,.0f} ms"]
        )  # fmt: skip
    table("operation | requests | per second | answers | not asked for | p50 | p95 | p99 | max",
          rows)  # fmt: skip


def verdict(name: str, passed: bool, evidence: str) -> bool:
    print(f"- {'PASS' if passed else 'FAIL'}: {name} ({evidence})")
    return passed


def print_log_levels(log: Path, shown: int = 8) -> None:
    """A process's log lines by level, and the first ``shown`` above INFO (or not JSON)."""
    levels: Counter[str] = Counter()
    notable = []
    for line in log.read_text(errors="replace").splitlines():
        if "BRIDGE_ALLOW_PRIVATE_HOOK_TARGETS is on" in line:
            continue  # said at start by every process that may deliver to 127.0.0.1: expected
        try:
            level = str(json.loads(line).get("level", "?"))
        except (ValueError, AttributeError):
            level = "not JSON"
        levels[level] += 1
        if level not in {"INFO", "DEBUG"} and len(notable) < shown:
            notable.append(line[:400])
    print(f"{log.name} lines by level: {dict(levels)}")
    print("".join(f"    {line}\n" for line in notable), end="")


# --- the load tool: wrk ------------------------------------------------------------------------
@dataclass(frozen=True)
class Load:
    requests_per_second: float
    requests: int
    p50_ms: float


def wrk(url: str, *, seconds: float, connections: int, headers: Mapping[str, str]) -> Load:
    """Closed-loop load with wrk (one thread, keep-alive connections). Every answer must be a
    2xx: a refusal would be measured as speed."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    command += [option for name, value in headers.items() for option in ("-H", f"{name}: {value}")]
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"(\d+) requests in", output)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)$", output, re.MULTILINE)
    if "Non-2xx" in output or "Socket errors" in output or not (rate and count and p50):
        raise RuntimeError(f"wrk saw failures, or printed what this does not read:\n{output}")
    to_ms = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p50[2]]
    return Load(float(rate[1]), int(count[1]), float(p50[1]) * to_ms)
