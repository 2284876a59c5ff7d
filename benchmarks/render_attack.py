"""Is the service still available while templates are used as weapons? ``GET /v1/me`` of one
account, measured while other accounts keep 8 attack renders in flight, against the same
measurement on the same server with no attack, in the same run.

    python -m benchmarks.render_attack [--seconds 60]

A default ``templateto-bridge serve`` on SQLite (2 workers x 8 threads, the default render
limits). Four attacker accounts with two clients each send, in turn, the five attacks of
issue 13 (a quadratic HTML-to-text, a slow filter, a range join, a 15,000-row PDF table, a
malformed declaration); a client answered ``429 render_busy`` waits 0.2 s before its next attack
(without a pause it would measure a flood of cheap requests, which the per-key rate limit
answers). The bystander sends ``GET /v1/me`` every 20 ms from each of 2 clients and records every
answer's latency. Beside them, every 0.25 s, the resident memory of each of the server's
processes (web workers, render processes, their fork servers).

Targets: no error and a p99 latency under 100 ms for the bystander; no process over the render
memory limit plus a web worker's normal size; no worker killed by gunicorn for a timeout.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

from benchmarks.live import (
    Server,
    bridge_env,
    bridge_services,
    free_port,
    processes,
    running,
    serve_command,
    stop_cleanly_on_sigterm,
    throwaway_database,
)
from connector.api_keys import Permission
from connector.templates import TemplateFields

P99_TARGET_MS = 100.0
MEMORY_LIMIT_MB = 512  # BRIDGE_RENDER_MEMORY_MB's default
ATTACKERS, CLIENTS_PER_ATTACKER = 4, 2
BYSTANDER_CLIENTS, BYSTANDER_PAUSE = 2, 0.02
BUSY_PAUSE = 0.2
TABLE = (
    "<table>{% for i in (1..15000) %}<tr><td>{{ i }}</td><td>cell {{ i }}</td>"
    "<td>more text</td></tr>{% endfor %}</table>"
)
# (format, template, data): issue 13's table of attacks.
ATTACKS = (
    ("txt", "{{ x }}", {"x": "<!--" * 60_000}),
    ("txt", "{{ x | strip_html | size }}", {"x": ">" + "<!--" * 60_000}),
    ("txt", '{{ (1..20000000) | join: "," }}', {}),
    ("pdf", TABLE, {}),
    ("txt", "{{ x }}", {"x": "<![<!["}),
)


@dataclass
class Observed:
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    attacks: Counter[str] = field(default_factory=Counter)
    peak_rss_mb: dict[int, float] = field(default_factory=dict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="of each phase")
    arguments = parser.parse_args()
    stop_cleanly_on_sigterm()

    with tempfile.TemporaryDirectory(prefix="bench-") as work_dir:
        work, data_dir = Path(work_dir), Path(work_dir) / "data"
        data_dir.mkdir()
        with throwaway_database("sqlite", data_dir) as database_url:
            with bridge_services(database_url, data_dir) as services:
                bystander = services.accounts.create("Bystander")
                bystander_key = services.keys.create(bystander.id, "Monitor").value
                attackers = []
                for number in range(ATTACKERS):
                    account = services.accounts.create(f"Attacker {number}")
                    key = services.keys.create(account.id, "Attack", Permission.STANDARD)
                    templates = [
                        services.templates.create(
                            account.id, TemplateFields(name=f"Attack {i}", body=body)
                        ).id
                        for i, (_, body, _) in enumerate(ATTACKS)
                    ]
                    attackers.append((key.value, templates))
                settings = services.settings
            port = free_port()
            with running(
                serve_command(port),
                port=port,
                env=bridge_env(settings, port),
                log=work / "server.log",
            ) as server:
                quiet = observe(server, bystander_key, [], arguments.seconds)
                attacked = observe(server, bystander_key, attackers, arguments.seconds)
                timeouts = (work / "server.log").read_text().count("WORKER TIMEOUT")
                idle_worker_mb = web_worker_rss_mb(server)
    report(quiet, attacked, timeouts, idle_worker_mb, arguments.seconds)


def observe(
    server: Server, bystander_key: str, attackers: list[tuple[str, list[str]]], seconds: float
) -> Observed:
    observed = Observed()
    stop = threading.Event()
    threads = [
        threading.Thread(target=poll_me, args=(server.url, bystander_key, observed, stop))
        for _ in range(BYSTANDER_CLIENTS)
    ]
    for key, templates in attackers:
        threads += [
            threading.Thread(target=attack, args=(server.url, key, templates, observed, stop))
            for _ in range(CLIENTS_PER_ATTACKER)
        ]
    threads.append(threading.Thread(target=watch_memory, args=(server, observed, stop)))
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(60)
    return observed


def poll_me(url: str, key: str, observed: Observed, stop: threading.Event) -> None:
    with requests.Session() as session:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                response = session.get(f"{url}/v1/me", headers={"X-Api-Key": key}, timeout=10)
            except requests.RequestException as error:
                observed.errors[type(error).__name__] += 1
            else:
                if response.status_code == 200:
                    observed.latencies_ms.append((time.perf_counter() - started) * 1e3)
                else:
                    observed.errors[str(response.status_code)] += 1
            stop.wait(BYSTANDER_PAUSE)


def attack(
    url: str, key: str, templates: list[str], observed: Observed, stop: threading.Event
) -> None:
    turn = 0
    with requests.Session() as session:
        while not stop.is_set():
            format, _, data = ATTACKS[turn % len(ATTACKS)]
            template = templates[turn % len(ATTACKS)]
            turn += 1
            try:
                response = session.post(
                    f"{url}/render/{format}/{template}",
                    json=data,
                    headers={"X-Api-Key": key},
                    timeout=60,
                )
            except requests.RequestException as error:
                observed.attacks[type(error).__name__] += 1
                continue
            code = response.json()["error"]["code"] if response.status_code >= 400 else "ok"
            observed.attacks[f"{response.status_code} {code}"] += 1
            if response.status_code == 429:
                stop.wait(BUSY_PAUSE)


def server_processes(server: Server) -> list[int]:
    return [pid for pid, fields in processes() if int(fields[2]) == server.process_group]


def rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def watch_memory(server: Server, observed: Observed, stop: threading.Event) -> None:
    while not stop.wait(0.25):
        for pid in server_processes(server):
            observed.peak_rss_mb[pid] = max(observed.peak_rss_mb.get(pid, 0.0), rss_mb(pid))


def web_worker_rss_mb(server: Server) -> float:
    """The largest resident size among gunicorn's workers now (the master's children)."""
    workers = [pid for pid, fields in processes() if int(fields[1]) == server.process_group]
    return max(rss_mb(pid) for pid in workers)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def report(
    quiet: Observed, attacked: Observed, timeouts: int, idle_worker_mb: float, seconds: float
) -> None:
    print(
        f"serve defaults on SQLite; {seconds:g} s per phase; bystander: {BYSTANDER_CLIENTS} "
        f"clients, GET /v1/me every {BYSTANDER_PAUSE * 1e3:g} ms; attack: {ATTACKERS} accounts "
        f"x {CLIENTS_PER_ATTACKER} clients in flight\n"
    )
    print("| phase | /v1/me answers | errors | p50 | p99 | max |\n|---|---|---|---|---|---|")
    for name, observed in (("no attack", quiet), ("8 attacks in flight", attacked)):
        latencies = observed.latencies_ms
        errors = sum(observed.errors.values())
        print(
            f"| {name} | {len(latencies)} | {errors} {dict(observed.errors) or ''} | "
            f"{statistics.median(latencies):.1f} ms | {percentile(latencies, 0.99):.1f} ms | "
            f"{max(latencies):.1f} ms |"
        )
    print(f"\nattack answers: {dict(sorted(attacked.attacks.items()))}")
    peak = max(attacked.peak_rss_mb.values())
    ceiling = MEMORY_LIMIT_MB + idle_worker_mb
    print(
        f"largest resident size of any server process under attack: {peak:.0f} MB "
        f"(ceiling: the {MEMORY_LIMIT_MB} MB render limit + a web worker's "
        f"{idle_worker_mb:.0f} MB = {ceiling:.0f} MB); gunicorn worker timeouts: {timeouts}"
    )
    p99 = percentile(attacked.latencies_ms, 0.99)
    print(
        f"under attack: {sum(attacked.errors.values())} errors, p99 {p99:.1f} ms "
        f"{verdict(p99 < P99_TARGET_MS and not attacked.errors)} the target (0 errors, p99 "
        f"under {P99_TARGET_MS:g} ms); memory {verdict(peak <= ceiling)} its ceiling; "
        f"timeouts {verdict(timeouts == 0)} none"
    )


if __name__ == "__main__":
    main()
