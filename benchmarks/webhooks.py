"""Webhook delivery: one event fanned out to 1,000 subscriptions, against a plain
requests.Session loop posting the same 1,000 bodies with the same concurrency; and the delay
from an event's commit to its first delivery attempt with an idle worker.

    python -m benchmarks.webhooks
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from requests.adapters import HTTPAdapter

from benchmarks import live
from connector.templates import TemplateFields
from connector.webhooks.subscriptions import NewHook

SUBSCRIPTIONS, CONCURRENCY, LATENCY_SAMPLES = 1_000, 16, 50
FANOUT_TARGET, LATENCY_TARGET_MS = 1.5, 200


def main() -> None:
    settings = {"allow_private_hook_targets": True, "delivery_concurrency": CONCURRENCY}
    with (
        live.workspace("sqlite") as (work, database_url),
        live.Receiver().running() as receiver,
        live.bridge_services(database_url, work / "data", **settings) as services,
    ):
        account = services.accounts.create("Benchmark")
        key = services.keys.create(account.id, "Benchmark")
        subscription = NewHook(target_url=f"{receiver.url}/hook", events=["template.created"])
        for _ in range(SUBSCRIPTIONS):
            services.hooks.create(account.id, key.id, subscription, "api")

        fanouts, baselines = [], []
        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_maxsize=CONCURRENCY))
        body = b'{"type":"template.created","data":{"id":"tpl_x","name":"Fan-out"}}'

        def post(_: int) -> None:
            session.post(receiver.url, data=body, timeout=10).close()

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            for round_ in range(3):  # interleaved, so both see the same machine load
                start = time.perf_counter()
                services.templates.create(account.id, TemplateFields(name=f"F{round_}", body="x"))
                while services.delivery.run_once():
                    pass
                fanouts.append(time.perf_counter() - start)

                start = time.perf_counter()
                list(pool.map(post, range(SUBSCRIPTIONS)))
                baselines.append(time.perf_counter() - start)

        # Latency: one subscription, the worker idle in its own thread.
        for hook in services.hooks.list(account.id):
            services.hooks.delete(account.id, hook.id)
        services.hooks.create(account.id, key.id, subscription, "api")
        services.delivery.start()
        delays = []
        for number in range(LATENCY_SAMPLES):
            receiver.arrivals.clear()
            committed = time.monotonic()
            services.templates.create(account.id, TemplateFields(name=f"L{number}", body="x"))
            while not receiver.arrivals:
                time.sleep(0.001)
            delays.append(min(min(times) for times in receiver.arrivals.values()) - committed)
            time.sleep(0.2)  # let the worker go idle again

    fanout, baseline = statistics.median(fanouts), statistics.median(baselines)
    latency = f"{statistics.median(delays) * 1e3:.1f} ms"
    live.table("measurement | ours | baseline | ratio | target", [
        [f"1 event to {SUBSCRIPTIONS:,} subscriptions, concurrency {CONCURRENCY}",
         f"{fanout:.2f} s", f"{baseline:.2f} s (requests.Session loop)",
         f"{fanout / baseline:.2f}", f"≤ {FANOUT_TARGET}"],
        [f"commit to first delivery attempt, idle worker (median of {LATENCY_SAMPLES})", latency,
         "", "", f"< {LATENCY_TARGET_MS} ms"],
    ])  # fmt: skip


if __name__ == "__main__":
    main()
