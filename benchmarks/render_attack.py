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
from collections import Counter
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
            quiet = observe(server, [(me, BYSTANDER_CLIENTS)], seconds)
            attacked = observe(server, [(me, BYSTANDER_CLIENTS), (attack, ATTACK_CLIENTS)], seconds)
            timeouts = server.log.read_text().count("WORKER TIMEOUT")
            idle_worker_mb = max(live.rss_mb(pid) for pid in server.workers())
    report(quiet, attacked, timeouts, idle_worker_mb, seconds)


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


def report(
    quiet: tuple[list[live.Outcome], float],
    attacked: tuple[list[live.Outcome], float],
    timeouts: int,
    idle_worker_mb: float,
    seconds: float,
) -> None:
    print(
        f"serve defaults on SQLite; {seconds:g} s per phase; bystander: {BYSTANDER_CLIENTS} "
        f"clients, GET /v1/me every {BYSTANDER_PAUSE * 1e3:g} ms; attack: {ATTACK_CLIENTS} "
        f"clients in flight for {ATTACKERS} accounts\n"
    )
    rows = []
    for name, (outcomes, _) in (("no attack", quiet), ("8 attacks in flight", attacked)):
        bystander = [o for o in outcomes if o.operation == "/v1/me"]
        ms = [o.seconds * 1e3 for o in bystander if o.status == 200]
        errors = [o for o in bystander if o.status != 200]  # the last: under attack
        p99 = live.percentile(ms, 0.99)
        latencies = (f"{value:.1f} ms" for value in (statistics.median(ms), p99, max(ms)))
        rows.append([name, len(ms), f"{len(errors)} {live.answers(errors)}", *latencies])
    live.table("phase | /v1/me answers | errors | p50 | p99 | max", rows)
    attacks = Counter(o.answer for o in attacked[0] if o.operation == "attack")
    peak, ceiling = attacked[1], MEMORY_LIMIT_MB + idle_worker_mb
    print(
        f"\nattack answers: {dict(sorted(attacks.items()))}\nlargest resident size of any "
        f"server process under attack: {peak:.0f} MB (ceiling: the {MEMORY_LIMIT_MB} MB render "
        f"limit + a web worker's {idle_worker_mb:.0f} MB = {ceiling:.0f} MB); gunicorn worker "
        f"timeouts: {timeouts}"
    )
    available = _verdict(p99 < P99_TARGET_MS and not errors)
    print(
        f"under attack: {len(errors)} errors, p99 {p99:.1f} ms: {available} the target (0 errors, "
        f"p99 under {P99_TARGET_MS:g} ms); memory {_verdict(peak <= ceiling)} its ceiling; "
        f"timeouts {_verdict(timeouts == 0)} none"
    )


def _verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


if __name__ == "__main__":
    main()
