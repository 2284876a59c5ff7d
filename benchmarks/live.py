"""A live service for the benchmarks that measure over HTTP: a throwaway database, server
processes on 127.0.0.1, and the load tool. Everything started here is stopped and dropped on
the way out, also when the run fails or is interrupted."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg
import requests
from psycopg import sql

from connector import schema
from connector.cli import serve as serve_cli
from connector.config import Settings, load_settings
from connector.services import Services

Database = Literal["sqlite", "postgresql"]
HOST = "127.0.0.1"
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
# Load runs would otherwise meet the per-key abuse limit (1200/minute by default).
NO_KEY_LIMIT = {"BRIDGE_RATE_LIMIT_PER_KEY": "1000000/minute"}
# Load that keeps using a rolled value would also meet the limits on refused requests (per
# address and per value); over them, even a working key not yet cached gets a 429.
NO_REFUSAL_LIMITS = {
    "BRIDGE_FAILED_AUTH_LIMIT_PER_ADDRESS": "1000000/minute",
    "BRIDGE_FAILED_AUTH_LIMIT_PER_KEY_VALUE": "1000000/minute",
}
REPOSITORY = Path(__file__).resolve().parents[1]
STOP_SECONDS = 15
# serve's option defaults (workers, threads), so a benchmark follows them when they change.
SERVE_DEFAULTS: dict[str | None, Any] = {param.name: param.default for param in serve_cli.params}
READY_SECONDS = 60


def stop_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so the ``with`` blocks below still clean up."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextmanager
def throwaway_database(kind: Database, data_dir: Path) -> Iterator[str]:
    """A database URL: a SQLite file in ``data_dir``, or a PostgreSQL database of this process
    (``bench_<pid>``) dropped at the end."""
    if kind == "sqlite":
        yield f"sqlite:///{data_dir / 'bridge.db'}"
        return
    name = f"bench_{os.getpid()}"
    with postgres_database(name):
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """A database ``name`` on the PostgreSQL at 127.0.0.1:5432, dropped at the end; yields its
    URL (for psycopg)."""
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    administer(drop)  # a leftover of an earlier process with this pid
    administer(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        administer(drop)


def administer(statement: sql.Composed) -> None:
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(statement)


@contextmanager
def bridge_services(database_url: str, data_dir: Path, **overrides: Any) -> Iterator[Services]:
    """Services on the benchmark's database, with the newest schema: to set up accounts, keys
    and rows before the server starts. ``overrides``: settings of this process only."""
    settings = load_settings(data_dir=data_dir, database_url=database_url, **overrides)
    services = Services.build(settings)
    try:
        schema.upgrade(services.db.engine)
        yield services
    finally:
        services.close()


def bridge_env(
    settings: Settings, port: int, extra: Mapping[str, str] = NO_KEY_LIMIT
) -> dict[str, str]:
    """The environment of a ``templateto-bridge serve`` on ``settings``' database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "TEMPLATETO_"))}
    env.update(
        BRIDGE_DATA_DIR=str(settings.data_dir),
        BRIDGE_DATABASE_URL=settings.database_url,
        BRIDGE_SECRET_KEY=settings.secret_key.get_secret_value(),
        BRIDGE_PUBLIC_URL=f"http://{HOST}:{port}",
        **extra,
    )
    return env


def serve_command(
    port: int, workers: int = 2, threads: int | None = None, *, deliver: bool = True
) -> list[str]:
    """``templateto-bridge serve`` as users run it (webhook delivery on, the default, unless
    not ``deliver``), with serve's default threads per worker unless ``threads``."""
    threads = threads or SERVE_DEFAULTS["threads"]
    command = [sys.executable, "-m", "connector", "serve", "--host", HOST, "--port", str(port),
               "--workers", str(workers), "--threads", str(threads)]  # fmt: skip
    return command if deliver else [*command, "--no-delivery"]


@dataclass(frozen=True)
class Server:
    url: str
    process_group: int

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server's processes (master and live workers)."""
        return sum(self.cpu_by_process().values())

    def cpu_by_process(self) -> dict[int, float]:
        """CPU seconds used so far by each of the server's processes, by pid (the master's pid
        is ``process_group``)."""
        return {
            pid: (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
            for pid, fields in processes()
            if int(fields[2]) == self.process_group
        }


def processes() -> Iterator[tuple[int, list[str]]]:
    """Every process's pid and the fields of its /proc/<pid>/stat after the command name
    (state, ppid, pgrp, ...)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # one that just ended
        yield int(entry.name), fields


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (gunicorn's workers, for its master)."""
    return sorted(
        child for child, fields in processes() if int(fields[1]) == pid and fields[0] != "Z"
    )


@contextmanager
def running(
    command: Sequence[str], *, port: int, env: Mapping[str, str], log: Path
) -> Iterator[Server]:
    """Run ``command`` (a server on ``port``) in its own process group; yields it once it
    answers HTTP; stops the whole group at the end (SIGTERM, then SIGKILL)."""
    with started(command, env=env, log=log) as process:
        url = f"http://{HOST}:{port}"
        wait_until_serving(url, process, log)
        yield Server(url, process.pid)


@contextmanager
def started(
    command: Sequence[str], *, env: Mapping[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` in a process group of its own, its output in ``log``; stop the whole
    group at the end (SIGTERM, then SIGKILL), also on failure."""
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            list(command),
            env=dict(env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=REPOSITORY,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop(process)


def wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the server at ``url`` answers HTTP (any status: the bare app has no /healthz)."""
    deadline = time.monotonic() + READY_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server for {url} exited: {log.read_text()[-3000:]}")
        with suppress(requests.RequestException):
            requests.get(f"{url}/healthz", timeout=1)
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"no answer on {url}: {log.read_text()[-3000:]}")
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(STOP_SECONDS)
            break
        except subprocess.TimeoutExpired:
            continue
    # Workers that outlived their master (killed above) go with the group.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


# --- the load tool: wrk ------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    requests_per_second: float
    requests: int
    p50_ms: float
    p99_ms: float


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {pattern!r} in wrk's output:\n{text}")
    return match[1]


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise RuntimeError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNITS_MS[match[2]]


def wrk(
    url: str, *, seconds: float, connections: int, headers: Mapping[str, str] | None = None
) -> Load:
    """Closed-loop load with wrk (one thread, keep-alive connections). Every answer must be a
    2xx: a refusal would be measured as speed."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw failures:\n{output}")
    return Load(
        requests_per_second=float(_find(r"Requests/sec:\s+([\d.]+)", output)),
        requests=int(_find(r"(\d+) requests in", output)),
        p50_ms=_ms(_find(r"^\s+50%\s+(\S+)$", output)),
        p99_ms=_ms(_find(r"^\s+99%\s+(\S+)$", output)),
    )
