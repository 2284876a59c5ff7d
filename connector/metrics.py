"""Prometheus metrics for ``/metrics``.

Under ``serve`` every gunicorn worker writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR``
(``serve`` makes one) and ``/metrics``, whichever worker answers, adds them all up. A single
process (tests, ``worker`` alone) keeps them in memory. The outbox figures are read from the
database, and Redis is asked, when scraped, so they are the same whoever answers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from .clock import Clock
from .db import Database
from .events import DeliveryStatus
from .limits import RedisLink
from .models import Delivery

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class OutboxCollector(Collector):
    """How many deliveries wait, and how long the oldest has waited."""

    def __init__(self, db: Database, clock: Clock, redis: RedisLink | None = None) -> None:
        self._db = db
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._db.transaction() as session:
            count, oldest = session.execute(
                select(func.count(), func.min(Delivery.created_at)).where(
                    Delivery.status == DeliveryStatus.PENDING.value
                )
            ).one()
        yield GaugeMetricFamily(
            "bridge_outbox_pending_deliveries", "Webhook deliveries not yet done.", value=count
        )
        yield GaugeMetricFamily(
            "bridge_outbox_oldest_pending_age_seconds",
            "Age of the oldest webhook delivery not yet done (0 when none).",
            value=_age(oldest, self._clock.now()),
        )


class RedisCollector(Collector):
    """Whether the limits' Redis answers, asked when scraped (so the same whoever answers)."""

    def __init__(self, redis: RedisLink) -> None:
        self._redis = redis

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "bridge_redis_up",
            "1 when Redis (BRIDGE_REDIS_URL) answers; 0 while the abuse limits count without it.",
            value=1 if self._redis.check() else 0,
        )


def _age(oldest: datetime | None, now: datetime) -> float:
    return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0


class Metrics:
    def __init__(self, db: Database, clock: Clock, redis: RedisLink | None = None) -> None:
        self._multiprocess = bool(os.environ.get(MULTIPROCESS_DIR))
        # prometheus_client picks where samples live when it is imported; gunicorn workers are
        # forked after that, so pick again here, in the process that counts.
        values.ValueClass = values.get_value_class()
        self._registry = CollectorRegistry()
        self._outbox = OutboxCollector(db, clock)
        self._redis = RedisCollector(redis) if redis is not None else None
        self.requests = Counter(
            "bridge_http_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self._registry,
        )
        self.latency = Histogram(
            "bridge_http_request_duration_seconds",
            "Time to answer HTTP requests, by route and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self._registry,
        )
        self.authentications = Counter(
            "bridge_authentications",
            "API key authentications by result: accepted, a refusal reason, or a limit.",
            ["result"],
            registry=self._registry,
        )
        self.deliveries = Counter(
            "bridge_webhook_deliveries",
            "Webhook delivery attempts by outcome: delivered, retrying, failed, gone.",
            ["outcome"],
            registry=self._registry,
        )

    def request_answered(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def authenticated(self, result: str) -> None:
        """Count an authentication by result: accepted, a refusal reason, or "limited"."""
        self.authentications.labels(result).inc()

    def exposition(self) -> bytes:
        """The text ``/metrics`` answers, in Prometheus' format."""
        registry = CollectorRegistry()
        if self._multiprocess:
            MultiProcessCollector(registry)
        else:
            for collector in (self.requests, self.latency, self.authentications, self.deliveries):
                registry.register(collector)
        registry.register(self._outbox)
        if self._redis is not None:
            registry.register(self._redis)
        return generate_latest(registry)
