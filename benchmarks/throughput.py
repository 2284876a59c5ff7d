"""Throughput of ``GET /v1/me`` under ``templateto-bridge serve`` (gunicorn, 2 workers) against
a bare Flask JSON route under the same gunicorn options, with the same load, in the same run.

    python -m benchmarks.throughput                         # SQLite, the embedded default
    python -m benchmarks.throughput --database postgresql   # a throwaway bench_<pid> database

Needs wrk (apt-get install -y wrk). Both servers run side by side with serve's default threads
per worker; after a warm-up, rounds of wrk alternate between them (ours, bare, ours, bare, ...).
The target is on requests/s: the median of the rounds' ratios. Beside it, the CPU time the
servers' processes used per request (from /proc), whose ratio is what the throughput ratio
would be on a machine of our own: both servers are CPU-bound, and CPU time is much less
disturbed than requests/s by other work on a shared machine.

Which worker accepts each of wrk's connections is a race in the kernel, and in some rounds one
worker gets nearly all of them: that server then runs on one core, at a third of its speed.
Such a round measures the race, not the code, so each round's split of the workers' CPU is
shown, and the target is judged on the pairs of rounds where both servers' load was spread
(no worker over BALANCED_SHARE of it); the median over every round is shown beside it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import requests

from benchmarks import bare_app
from benchmarks.live import (
    SERVE_DEFAULTS,
    Load,
    Server,
    bridge_env,
    bridge_services,
    free_port,
    running,
    serve_command,
    stop_cleanly_on_sigterm,
    throwaway_database,
    wrk,
)

TARGET = 0.70
WARM_UP_SECONDS = 3
BALANCED_SHARE = 0.65  # of the workers' CPU in a round, for the busiest worker of two
ENOUGH_BALANCED = 3


@dataclass(frozen=True)
class Round:
    load: Load
    cpu_per_request: float  # seconds of the server's CPU (all its processes) per request
    busiest_worker_share: float  # of the CPU its workers used in the round

    @property
    def balanced(self) -> bool:
        return self.busiest_worker_share <= BALANCED_SHARE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=SERVE_DEFAULTS["threads"])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=5, help="per round and server")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--no-delivery", action="store_true", help="serve without its webhook delivery threads"
    )
    arguments = parser.parse_args()
    stop_cleanly_on_sigterm()

    with tempfile.TemporaryDirectory(prefix="bench-") as work_dir:
        work, data_dir = Path(work_dir), Path(work_dir) / "data"
        data_dir.mkdir()
        with throwaway_database(arguments.database, data_dir) as database_url:
            with bridge_services(database_url, data_dir) as services:
                account = services.accounts.create("Benchmark Ltd")
                key = services.keys.create(account.id, "Benchmark").value
                settings = services.settings
            ours_port, bare_port = free_port(), free_port()
            ours_command = serve_command(
                ours_port, arguments.workers, arguments.threads, deliver=not arguments.no_delivery
            )
            bare_command = [sys.executable, "-m", "benchmarks.bare_app", "--port", str(bare_port),
                            "--workers", str(arguments.workers),
                            "--threads", str(arguments.threads)]  # fmt: skip
            with (
                running(
                    ours_command,
                    port=ours_port,
                    env=bridge_env(settings, ours_port),
                    log=work / "ours.log",
                ) as ours,
                running(
                    bare_command,
                    port=bare_port,
                    env=bridge_env(settings, bare_port),
                    log=work / "bare.log",
                ) as bare,
            ):
                servers = {"ours": ours, "bare": bare}
                headers = {"X-Api-Key": key}
                _check(servers, headers)

                def measure(name: str, seconds: int) -> Round:
                    server = servers[name]
                    before = server.cpu_by_process()
                    load = wrk(
                        f"{server.url}/v1/me",
                        seconds=seconds,
                        connections=arguments.connections,
                        headers=headers,
                    )
                    used = {
                        pid: cpu - before.get(pid, 0.0)
                        for pid, cpu in server.cpu_by_process().items()
                    }
                    workers = [cpu for pid, cpu in used.items() if pid != server.process_group]
                    return Round(
                        load,
                        sum(used.values()) / load.requests,
                        max(workers) / sum(workers) if sum(workers) else 1.0,
                    )

                for name in servers:
                    measure(name, WARM_UP_SECONDS)
                rounds: dict[str, list[Round]] = {name: [] for name in servers}
                for _ in range(arguments.rounds):  # interleaved: both see the same machine
                    for name in servers:
                        rounds[name].append(measure(name, arguments.seconds))

    _report(arguments, rounds)


def _check(servers: dict[str, Server], headers: dict[str, str]) -> None:
    """Both answer 200, and the baseline really is the bare app (not ours by mistake)."""
    for name, server in servers.items():
        response = requests.get(f"{server.url}/v1/me", headers=headers, timeout=10)
        response.raise_for_status()
        if (response.json()["account_name"] == bare_app.MARKER) != (name == "bare"):
            raise RuntimeError(f"{server.url} is not the {name} server")


def _report(arguments: argparse.Namespace, rounds: dict[str, list[Round]]) -> None:
    ours, bare = rounds["ours"], rounds["bare"]
    pairs = list(zip(ours, bare, strict=True))
    spread = [(o, b) for o, b in pairs if o.balanced and b.balanced]
    database = "SQLite" if arguments.database == "sqlite" else "PostgreSQL"
    delivery = ", no delivery threads" if arguments.no_delivery else ""
    print(
        f"{database}; gunicorn gthread, {arguments.workers} workers x {arguments.threads} "
        f"threads{delivery}; wrk -t1 -c{arguments.connections}; {arguments.rounds} rounds of "
        f"{arguments.seconds} s per server, interleaved; * marks a round where one worker used "
        f"over {BALANCED_SHARE:.0%} of the workers' CPU\n"
    )
    print(
        "| server | requests/s: median of spread rounds (every round) | p50 latency "
        "| CPU per request |\n|---|---|---|---|"
    )
    for label, runs, side in (("bare Flask JSON route", bare, 1), ("GET /v1/me (serve)", ours, 0)):
        chosen = [pair[side] for pair in spread] or runs
        per_round = ", ".join(
            f"{r.load.requests_per_second:.0f}{'' if r.balanced else '*'}" for r in runs
        )
        print(
            f"| {label} | {statistics.median(r.load.requests_per_second for r in chosen):.0f} "
            f"({per_round}) | {statistics.median(r.load.p50_ms for r in chosen):.1f} ms "
            f"| {statistics.median(r.cpu_per_request for r in chosen) * 1e6:.0f} µs |"
        )
    print()
    _ratios("every round", pairs)
    if len(spread) < ENOUGH_BALANCED:
        print(
            f"only {len(spread)} pairs of rounds had both servers' load spread: not enough to "
            "judge the target; run again, or with more --rounds"
        )
        return
    ratio = _ratios(f"the {len(spread)} pairs of spread rounds", spread)
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"on the spread rounds, {ratio:.2f} {verdict} the target of at least {TARGET:.2f}")


def _ratios(which: str, pairs: list[tuple[Round, Round]]) -> float:
    """Print and return the median throughput ratio of ``pairs`` (ours, bare)."""
    throughput = [o.load.requests_per_second / b.load.requests_per_second for o, b in pairs]
    cpu = [b.cpu_per_request / o.cpu_per_request for o, b in pairs]
    ratio = statistics.median(throughput)
    print(
        f"{which}: throughput ours / bare {ratio:.2f} ({min(throughput):.2f} to "
        f"{max(throughput):.2f}); CPU per request bare / ours {statistics.median(cpu):.2f} "
        f"({min(cpu):.2f} to {max(cpu):.2f})"
    )
    return ratio


if __name__ == "__main__":
    main()
