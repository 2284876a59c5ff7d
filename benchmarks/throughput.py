"""Throughput of ``GET /v1/me`` under ``templateto-bridge serve`` against a bare Flask JSON
route under the same gunicorn options (``benchmarks.bare_app``), with wrk, in the same run.

    python -m benchmarks.throughput [--database postgresql]

Method, and why rounds where one worker took nearly all connections are set aside:
docs/benchmarks.md, "Throughput".
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from dataclasses import dataclass

import requests

from benchmarks import bare_app, live

TARGET, WARM_UP_SECONDS, ENOUGH_BALANCED = 0.70, 3, 3
BALANCED_SHARE = 0.65  # of the workers' CPU in a round, for the busiest worker of two


@dataclass(frozen=True)
class Round:
    load: live.Load
    cpu_per_request: float  # seconds of the server's CPU (all its processes) per request
    balanced: bool  # no worker used over BALANCED_SHARE of the workers' CPU


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=live.SERVE_DEFAULTS["threads"])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=5, help="per round and server")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--no-delivery", action="store_true", help="serve without delivery threads")
    arguments = parser.parse_args()
    live.exit_cleanly()
    with live.workspace(arguments.database) as (work, database_url):
        with live.bridge_services(database_url, work / "data") as services:
            key = services.keys.create(services.accounts.create("Benchmark Ltd").id, "Benchmark")
        workers, threads = arguments.workers, arguments.threads
        port = live.free_port()
        bare = [sys.executable, "-m", "benchmarks.bare_app", "--port", str(port),
                "--workers", str(workers), "--threads", str(threads)]  # fmt: skip
        env = live.bridge_env(services.settings, port)
        # The bare app answers nothing but /v1/me: it is ready when that answers.
        with (
            live.served(services.settings, work / "ours.log", workers=workers, threads=threads,
                        deliver=not arguments.no_delivery) as ours,
            live.running(bare, port=port, env=env, log=work / "bare.log", workers=workers,
                         ready_path="/v1/me") as bare_server,
        ):  # fmt: skip
            servers = {"ours": ours, "bare": bare_server}
            headers = {"X-Api-Key": key.value}
            for name, server in servers.items():  # both answer, and each is the one it should be
                me = requests.get(f"{server.url}/v1/me", headers=headers, timeout=10).json()
                assert (me["account_name"] == bare_app.MARKER) == (name == "bare"), name
                measure(server, arguments, headers, WARM_UP_SECONDS)
            rounds: dict[str, list[Round]] = {name: [] for name in servers}
            for _ in range(arguments.rounds):  # interleaved: both see the same machine
                for name, server in servers.items():
                    rounds[name].append(measure(server, arguments, headers, arguments.seconds))
    report(arguments, rounds["ours"], rounds["bare"])


def measure(
    server: live.Server, arguments: argparse.Namespace, headers: dict[str, str], seconds: int
) -> Round:
    def cpu_seconds() -> dict[int, float]:  # by process: user and system time
        ticks = {pid: int(stat[11]) + int(stat[12]) for pid, stat in server.group().items()}
        return {pid: tick / os.sysconf("SC_CLK_TCK") for pid, tick in ticks.items()}

    before = cpu_seconds()
    url, connections = f"{server.url}/v1/me", arguments.connections
    load = live.wrk(url, seconds=seconds, connections=connections, headers=headers)
    used = {pid: cpu - before.get(pid, 0.0) for pid, cpu in cpu_seconds().items()}
    workers = [cpu for pid, cpu in used.items() if pid != server.process.pid]
    balanced = sum(workers) > 0 and max(workers) / sum(workers) <= BALANCED_SHARE
    return Round(load, sum(used.values()) / load.requests, balanced)


def report(arguments: argparse.Namespace, ours: list[Round], bare: list[Round]) -> None:
    pairs = list(zip(ours, bare, strict=True))
    spread = [(o, b) for o, b in pairs if o.balanced and b.balanced]
    print(
        f"{arguments.database}; gunicorn gthread, {arguments.workers} workers x "
        f"{arguments.threads} threads{', no delivery threads' * arguments.no_delivery}; wrk -t1 "
        f"-c{arguments.connections}; {arguments.rounds} rounds of {arguments.seconds} s per "
        f"server, interleaved; * marks a round where one worker used over {BALANCED_SHARE:.0%} "
        "of the workers' CPU\n"
    )
    rows = []
    for label, runs, side in (("bare Flask JSON route", bare, 1), ("GET /v1/me (serve)", ours, 0)):
        chosen = [pair[side] for pair in spread] or runs
        every = ", ".join(f"{r.load.requests_per_second:.0f}{'*' * (not r.balanced)}" for r in runs)
        rate = statistics.median(r.load.requests_per_second for r in chosen)
        p50 = statistics.median(r.load.p50_ms for r in chosen)
        cpu = statistics.median(r.cpu_per_request for r in chosen)
        rows.append([label, f"{rate:,.0f} ({every})", f"{p50:.1f} ms", f"{cpu * 1e6:.0f} µs"])
    live.table(
        "server | requests/s: median of spread rounds (every round) | p50 latency | "
        "CPU per request",
        rows,
    )
    print()
    ratios("every round", pairs)
    if len(spread) < ENOUGH_BALANCED:
        print(f"only {len(spread)} pairs of rounds had both servers' load spread: run again")
        return
    ratio = ratios(f"the {len(spread)} pairs of spread rounds", spread)
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"on the spread rounds, {ratio:.2f} {verdict} the target of at least {TARGET:.2f}")


def ratios(which: str, pairs: list[tuple[Round, Round]]) -> float:
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
