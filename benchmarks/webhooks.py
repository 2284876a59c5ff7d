"""Webhook delivery: one event fanned out to 1,000 subscriptions, against a plain
requests.Session loop posting the same 1,000 bodies with the same concurrency; and the delay
from an event's commit to its first delivery attempt with an idle worker.

    python -m benchmarks.webhooks
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import requests
from requests.adapters import HTTPAdapter

from connector import schema
from connector.config import load_settings
from connector.services import Services
from connector.templates import TemplateFields
from connector.webhooks.subscriptions import NewHook

SUBSCRIPTIONS = 1_000
CONCURRENCY = 16
LATENCY_SAMPLES = 50
FANOUT_TARGET = 1.5
LATENCY_TARGET_MS = 200


class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would
    arrivals: ClassVar[list[float]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Receiver.arrivals.append(time.perf_counter())
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"

    with tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings(
            data_dir=Path(data_dir),
            database_url="",
            allow_private_hook_targets=True,
            delivery_concurrency=CONCURRENCY,
        )
        services = Services.build(settings)
        schema.upgrade(services.db.engine)
        account = services.accounts.create("Benchmark")
        key = services.keys.create(account.id, "Benchmark")
        subscription = NewHook(target_url=url, events=["template.created"])
        for _ in range(SUBSCRIPTIONS):
            services.hooks.create(account.id, key.id, subscription, "api")

        fanouts, baselines = [], []
        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_maxsize=CONCURRENCY))
        body = b'{"type":"template.created","data":{"id":"tpl_x","name":"Fan-out"}}'
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            for round_ in range(3):
                start = time.perf_counter()
                services.templates.create(account.id, TemplateFields(name=f"F{round_}", body="x"))
                while services.delivery.run_once():
                    pass
                fanouts.append(time.perf_counter() - start)

                start = time.perf_counter()
                list(
                    pool.map(
                        lambda _: session.post(url, data=body, timeout=10).close(),
                        range(SUBSCRIPTIONS),
                    )
                )
                baselines.append(time.perf_counter() - start)

        # Latency: one subscription, the worker idle in its own thread.
        for hook in services.hooks.list(account.id):
            services.hooks.delete(account.id, hook.id)
        services.hooks.create(account.id, key.id, subscription, "api")
        services.delivery.start()
        delays = []
        for number in range(LATENCY_SAMPLES):
            _Receiver.arrivals.clear()
            committed = time.perf_counter()
            services.templates.create(account.id, TemplateFields(name=f"L{number}", body="x"))
            while not _Receiver.arrivals:
                time.sleep(0.001)
            delays.append(_Receiver.arrivals[0] - committed)
            time.sleep(0.2)  # let the worker go idle again
        services.close()
    server.shutdown()

    fanout, baseline = statistics.median(fanouts), statistics.median(baselines)
    latency = statistics.median(delays) * 1000
    print("| measurement | ours | baseline | ratio | target |")
    print("|---|---|---|---|---|")
    print(
        f"| 1 event to {SUBSCRIPTIONS:,} subscriptions, concurrency {CONCURRENCY} | "
        f"{fanout:.2f} s | {baseline:.2f} s (requests.Session loop) | "
        f"{fanout / baseline:.2f} | ≤ {FANOUT_TARGET} |"
    )
    print(
        f"| commit to first delivery attempt, idle worker (median of {LATENCY_SAMPLES}) | "
        f"{latency:.1f} ms | | | < {LATENCY_TARGET_MS} ms |"
    )


if __name__ == "__main__":
    main()
