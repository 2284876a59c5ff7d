"""Throughput of ``GET /v1/me`` under ``templateto-bridge serve`` (gunicorn, 2 workers) against
a bare Flask JSON route under the same gunicorn options, with the same load, in the same run.

    python -m benchmarks.throughput                         # SQLite, the embedded default
    python -m benchmarks.throughput --database postgresql   # a throwaway bench_<pid> database

Needs wrk (apt-get install -y wrk). Both servers run side by side; after a warm-up, rounds of
wrk alternate between them (ours, bare, ours, bare, ...) and the medians are compared.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import requests

from benchmarks import bare_app
from benchmarks.live import (
    Load,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="serve's default")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10, help="per round and server")
    parser.add_argument("--rounds", type=int, default=3)
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
            options = (arguments.workers, arguments.threads)
            bare_command = [sys.executable, "-m", "benchmarks.bare_app", "--port", str(bare_port),
                            "--workers", str(options[0]), "--threads", str(options[1])]  # fmt: skip
            with (
                running(
                    serve_command(ours_port, *options),
                    port=ours_port,
                    env=bridge_env(settings, ours_port),
                    log=work / "ours.log",
                ) as ours_url,
                running(
                    bare_command,
                    port=bare_port,
                    env=bridge_env(settings, bare_port),
                    log=work / "bare.log",
                ) as bare_url,
            ):
                headers = {"X-Api-Key": key}
                targets = {
                    "ours": (f"{ours_url}/v1/me", headers),
                    "bare": (f"{bare_url}/v1/me", headers),
                }
                _check(targets)

                def load(name: str, seconds: int) -> Load:
                    url, headers = targets[name]
                    return wrk(url, seconds=seconds, connections=arguments.connections,
                               headers=headers)  # fmt: skip

                for name in targets:
                    load(name, WARM_UP_SECONDS)
                runs: dict[str, list[Load]] = {name: [] for name in targets}
                for _ in range(arguments.rounds):  # interleaved: both see the same machine
                    for name in targets:
                        runs[name].append(load(name, arguments.seconds))

    _report(arguments, runs)


def _check(targets: dict[str, tuple[str, dict[str, str]]]) -> None:
    """Both answer 200, and the baseline really is the bare app (not ours by mistake)."""
    for name, (url, headers) in targets.items():
        response = requests.get(url, headers=headers, timeout=10)
        response.raise_for_status()
        is_bare = response.json()["account_name"] == bare_app.MARKER
        if is_bare != (name == "bare"):
            raise RuntimeError(f"{url} is not the {name} server")


def _report(arguments: argparse.Namespace, runs: dict[str, list[Load]]) -> None:
    ours = [load.requests_per_second for load in runs["ours"]]
    bare = [load.requests_per_second for load in runs["bare"]]
    ratio = statistics.median(ours) / statistics.median(bare)
    pairs = [o / b for o, b in zip(ours, bare, strict=True)]
    database = "SQLite" if arguments.database == "sqlite" else "PostgreSQL"
    print(
        f"{database}; gunicorn gthread, {arguments.workers} workers x {arguments.threads} "
        f"threads; wrk -t1 -c{arguments.connections}, {arguments.rounds} rounds of "
        f"{arguments.seconds} s per server, interleaved\n"
    )
    print("| server | requests/s (median) | per round | p50 latency | ratio | target |")
    print("|---|---|---|---|---|---|")
    for name, label in (("bare", "bare Flask JSON route"), ("ours", "GET /v1/me (serve)")):
        loads = runs[name]
        per_round = ", ".join(f"{load.requests_per_second:.0f}" for load in loads)
        p50 = statistics.median(load.p50_ms for load in loads)
        cell = f"**{ratio:.2f}** ({min(pairs):.2f} to {max(pairs):.2f})" if name == "ours" else "1"
        target = f"≥ {TARGET:.2f}" if name == "ours" else ""
        median = statistics.median(load.requests_per_second for load in loads)
        print(f"| {label} | {median:.0f} | {per_round} | {p50:.1f} ms | {cell} | {target} |")
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"\nratio {ratio:.2f}: {verdict} the target of at least {TARGET:.0%}")


if __name__ == "__main__":
    main()
