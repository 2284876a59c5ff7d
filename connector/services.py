"""The service objects one process shares, built once from the settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app

from .accounts import Accounts
from .api_keys import KeyManager
from .auth import Authenticator
from .clients import RefusalRepeats
from .clock import Clock
from .config import Settings
from .db import Database
from .documents import DocumentStore
from .events import EventLog
from .limits import ApiLimits, SignInLimits, limit_storage
from .links import DownloadLinks
from .metrics import Metrics
from .rendering import PdfConverter, Renderer
from .rendering.pdf import LocalPdfConverter
from .rendering.slots import PdfSlots
from .rendering.upstream import UpstreamPdfConverter
from .storage import LocalFileStore
from .templates import TemplateStore
from .usage import UsageRecorder
from .webhooks.delivery import DeliveryWorker
from .webhooks.subscriptions import HookStore

EXTENSION = "templateto"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    settings: Settings
    clock: Clock
    db: Database
    usage: UsageRecorder
    authenticator: Authenticator
    keys: KeyManager
    accounts: Accounts
    templates: TemplateStore
    renderer: Renderer
    documents: DocumentStore
    events: EventLog
    hooks: HookStore
    delivery: DeliveryWorker
    api_limits: ApiLimits
    sign_in_limits: SignInLimits
    metrics: Metrics

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Services:
        clock = clock or Clock()
        if settings.allow_private_hook_targets:
            log.warning(
                "BRIDGE_ALLOW_PRIVATE_HOOK_TARGETS is on: webhooks may reach loopback and private "
                "addresses. Use it for local development and tests only."
            )
        db = Database(settings.database_url)
        limits = limit_storage(settings.redis_url)
        metrics = Metrics(db, clock)
        usage = UsageRecorder(db)
        authenticator = Authenticator(db, usage, RefusalRepeats(limits), clock)
        templates = TemplateStore(db, clock)
        renderer = Renderer(
            _pdf_converter(settings),
            PdfSlots(concurrency=settings.pdf_concurrency, queue=settings.pdf_queue),
        )
        documents = DocumentStore(
            db,
            LocalFileStore(settings.data_dir / "documents"),
            renderer,
            templates,
            DownloadLinks(settings.secret_key.get_secret_value(), str(settings.public_url)),
            clock,
            timedelta(seconds=settings.document_ttl_seconds),
        )
        return cls(
            settings=settings,
            clock=clock,
            db=db,
            usage=usage,
            authenticator=authenticator,
            keys=KeyManager(db, clock, on_revoke=authenticator.forget_all),
            accounts=Accounts(db, clock),
            templates=templates,
            renderer=renderer,
            documents=documents,
            events=EventLog(db, clock),
            hooks=HookStore(db, clock, allow_private_targets=settings.allow_private_hook_targets),
            delivery=DeliveryWorker(
                db,
                clock,
                allow_private_targets=settings.allow_private_hook_targets,
                lease=timedelta(seconds=settings.delivery_lease_seconds),
                concurrency=settings.delivery_concurrency,
                housekeeping=documents.housekeeping,
                count_outcome=lambda outcome: metrics.deliveries.labels(outcome).inc(),
            ),
            api_limits=ApiLimits(
                limits,
                per_key=settings.rate_limit_per_key,
                failures_per_address=settings.failed_auth_limit_per_address,
                failures_per_value=settings.failed_auth_limit_per_key_value,
            ),
            sign_in_limits=SignInLimits(limits),
            metrics=metrics,
        )

    def close(self) -> None:
        """Stop delivering, write buffered usage and release database connections."""
        self.delivery.stop()
        self.usage.close()
        self.db.dispose()


def _pdf_converter(settings: Settings) -> PdfConverter:
    if settings.render_upstream_url is None or settings.render_upstream_key is None:
        return LocalPdfConverter()
    return UpstreamPdfConverter(
        str(settings.render_upstream_url), settings.render_upstream_key.get_secret_value()
    )


def services() -> Services:
    """The services of the app handling the current request."""
    return current_app.extensions[EXTENSION]
