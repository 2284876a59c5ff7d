"""Is the service still available while templates are used as weapons? ``GET /v1/me`` of one
account while other accounts keep 8 attack renders in flight, against the same with no attack.

    python -m benchmarks.render_attack [--seconds 60]

Method and targets: docs/benchmarks.md, "Under attack".
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from benchmarks import live
from connector.templates import TemplateFields

P99_TARGET_MS = 100.0
MEMORY_LIMIT_MB = 512  # BRIDGE_RENDER_MEMORY_MB's default
ATTACKERS, ATTACK_CLIENTS, BUSY_PAUSE = 4, 8, 0.2
BYSTANDER_CLIENTS, BYSTANDER_PAUSE = 2, 0.02
TABLE = (
    "<table>{% for i in (1..15000) %}<tr><td>{{ i }}</td><td>cell {{ i }}</td>"
    "<td>more text</td></tr>{% endfor %}</table>"
)
# (format, template, data): issue 13's table of attacks.
ATTACKS = (
    ("txt", "{{ x }}", {"x": "<!--" * 60_000}),  # quadratic HTML-to-text before
    ("txt", "{{ x | strip_html | size }}", {"x": ">" + "<!--" * 60_000}),  # a 25 s filter
    ("txt", '{{ (1..20000000) | join: "," }}', {}),  # 1.6 GB before
    ("pdf", TABLE, {}),  # 45 s of conversion
    ("txt", "{{ x }}", {"x": "<![<!["}),  # a 500 before
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="of each phase")
    seconds = parser.parse_args().seconds
    live.exit_cleanly()
    with live.workspace("sqlite") as (work, database_url):
        with live.bridge_services(database_url, work / "data") as services:
            bystander = services.accounts.create("Bystander")
            bystander_key = services.keys.create(bystander.id, "Monitor").value
            attackers = []
            for number in range(ATTACKERS):
                account = services.accounts.create(f"Attacker {number}")
                key = services.keys.create(account.id, "Attack").value
                templates = [
                    services.templates.create(account.id, TemplateFields(name=f"A{n}", body=body))
                    for n, (_, body, _) in enumerate(ATTACKS)
                ]
                attackers.append((key, [template.id for template in templates]))

        def me(client: live.Client, _: random.Random) -> None:
            client.call("/v1/me", "GET", "/v1/me", 200, key=bystander_key)
            time.sleep(BYSTANDER_PAUSE)

        def attack(client: live.Client, chance: random.Random) -> None:
            key, templates = chance.choice(attackers)
            number = chance.randrange(len(ATTACKS))
            format, _, data = ATTACKS[number]
            path = f"/render/{format}/{templates[number]}"
            answer = client.call("attack", "POST", path, 200, key=key, json=data)
            if answer is not None and answer.status_code == 429:
                time.sleep(BUSY_PAUSE)

        with live.served(services.settings, work / "server.log") as server:
            quiet, _ = observe(server, [(me, BYSTANDER_CLIENTS)], seconds)
            loads = [(me, BYSTANDER_CLIENTS), (attack, ATTACK_CLIENTS)]
            attacked, peak_mb = observe(server, loads, seconds)
            timeouts = server.log.read_text().count("WORKER TIMEOUT")
            worker_mb = max(live.rss_mb(pid) for pid in server.workers())
    print(
        f"serve defaults on SQLite; {seconds:g} s per phase; bystander: {BYSTANDER_CLIENTS} "
        f"clients, GET /v1/me every {BYSTANDER_PAUSE * 1e3:g} ms; attack: {ATTACK_CLIENTS} "
        f"clients in flight for {ATTACKERS} accounts\n"
    )
    rows = []
    for name, outcomes in (("no attack", quiet), ("8 attacks in flight", attacked)):
        bystander = [o for o in outcomes if o.operation == "/v1/me"]
        ms = [o.seconds * 1e3 for o in bystander if o.status == 200]
        errors = [o for o in bystander if o.status != 200]  # the last: under attack
        p99 = live.percentile(ms, 0.99)
        latencies = (f"{value:.1f} ms" for value in (statistics.median(ms), p99, max(ms)))
        rows.append(
            [name, len(ms), f"{len(errors)} ({live.answers(errors)})" if errors else 0, *latencies]
        )
    live.table("phase | /v1/me answers | errors | p50 | p99 | max", rows)
    print(f"\nattack answers: {live.answers(o for o in attacked if o.operation == 'attack')}\n")
    ceiling = MEMORY_LIMIT_MB + worker_mb
    live.verdict(
        f"under attack, 0 errors and a p99 under {P99_TARGET_MS:g} ms",
        not errors and p99 < P99_TARGET_MS,
        f"{len(errors)} errors, p99 {p99:.1f} ms",
    )
    live.verdict(
        "no process over the render memory limit plus a web worker's size",
        peak_mb <= ceiling,
        f"at most {peak_mb:.0f} MB; {MEMORY_LIMIT_MB} + {worker_mb:.0f} = {ceiling:.0f} MB",
    )
    live.verdict("no worker killed by gunicorn for a timeout", not timeouts, f"{timeouts} killed")


def observe(
    server: live.Server, loads: list[tuple[live.Operation, int]], seconds: float
) -> tuple[list[live.Outcome], float]:
    """Run the ``loads`` (an operation, and how many clients call it) side by side for
    ``seconds``, watching the memory of the server's processes: the outcomes, and the
    largest resident size of any one of them."""
    peak, done = [0.0], threading.Event()

    def watch_memory() -> None:
        while not done.wait(0.25):
            peak[0] = max(peak[0], *(live.rss_mb(pid) for pid in server.group()))

    threading.Thread(target=watch_memory).start()
    with ThreadPoolExecutor(len(loads)) as pool:
        runs = [
            pool.submit(live.run_load, server.url, connections=n, seconds=seconds, mix=[(op, 1.0)])
            for op, n in loads
        ]
        outcomes = [outcome for run in runs for outcome in run.result()[0]]
    done.set()
    return outcomes, peak[0]


if __name__ == "__main__":
    main()
