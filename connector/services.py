"""The service objects one process shares, built once from the settings."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from flask import current_app

from .accounts import Accounts
from .api_keys import KeyManager
from .audit import AuditLog
from .auth import Authenticator
from .clients import RefusalRepeats
from .clock import Clock
from .config import Settings
from .db import Database
from .documents import DocumentStore
from .encryption import StoredSecrets
from .events import EventLog
from .key_policy import KeyPolicies
from .leaks import LeakResponder
from .limits import ApiLimits, LocalCounts, MachineCounts, RedisLink, SignInLimits, counted_in
from .links import DownloadLinks
from .metrics import Metrics
from .platforms import API, Platform
from .rendering import PdfConverter, Renderer, RenderLimits
from .rendering.pool import RenderPool
from .rendering.slots import RenderSlots
from .rendering.upstream import UpstreamPdfConverter
from .revocations import RevocationListener, RevocationSignal
from .rotation import RotationWatch
from .secret_scanning import GitHubPublicKeys
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
    leaks: LeakResponder
    # GitHub's public keys, which sign its secret scanning matches.
    github_keys: GitHubPublicKeys
    audit: AuditLog
    key_policies: KeyPolicies
    rotation: RotationWatch
    # Secrets kept encrypted in the database (webhook signing secrets).
    secrets: StoredSecrets
    hooks: HookStore
    delivery: DeliveryWorker
    api_limits: ApiLimits
    sign_in_limits: SignInLimits
    # BRIDGE_REDIS_URL's Redis, which the limits share; None without it.
    redis: RedisLink | None
    metrics: Metrics
    revocations: RevocationSignal
    # Other machines' rolls and deletes, heard by a serving process (PostgreSQL only).
    revocation_listener: RevocationListener | None
    # Made by build() when no one passed a directory for the render slots: removed on close.
    own_slots_dir: Path | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        clock: Clock | None = None,
        *,
        platforms: Sequence[Platform] = (API,),
        render_slots_dir: Path | None = None,
    ) -> Services:
        """``platforms``: those whose hooks this process delivers to (``app.platforms()``).
        ``render_slots_dir`` is shared by every process of one ``serve``, so that the render
        limits hold for the machine; by default this process has slots of its own."""
        clock = clock or Clock()
        if settings.allow_private_hook_targets:
            log.warning(
                "BRIDGE_ALLOW_PRIVATE_HOOK_TARGETS is on: webhooks may reach loopback and private "
                "addresses. Use it for local development and tests only."
            )
        db = Database(settings.database_url)
        redis = RedisLink(settings.redis_url) if settings.redis_url else None
        metrics = Metrics(db, clock, redis)
        usage = UsageRecorder(db)
        # Both filled by load_settings.
        assert settings.runtime_dir is not None and settings.public_url is not None
        revocations = RevocationSignal(settings.runtime_dir)
        authenticator = Authenticator(
            db,
            usage,
            RefusalRepeats(db, clock),
            revocations,
            clock,
            poll_seconds=settings.revocation_poll_seconds,
        )
        own_slots_dir = None
        if render_slots_dir is None:
            render_slots_dir = own_slots_dir = Path(tempfile.mkdtemp(prefix="bridge-render-"))
        renderer = _renderer(settings, render_slots_dir)
        templates = TemplateStore(db, clock, renderer)
        secret_key, previous_secret_key = settings.secret_keys()
        secrets = StoredSecrets(secret_key, previous_secret_key)
        documents = DocumentStore(
            db,
            LocalFileStore(settings.data_dir / "documents"),
            renderer,
            templates,
            DownloadLinks(secret_key, str(settings.public_url), previous_secret_key),
            clock,
            timedelta(seconds=settings.document_ttl_seconds),
        )
        key_manager = KeyManager(db, clock, on_revoke=revocations.bump)
        audit = AuditLog(db, clock, timedelta(days=settings.audit_retention_days))
        rotation = RotationWatch(db, clock)
        return cls(
            settings=settings,
            clock=clock,
            db=db,
            usage=usage,
            authenticator=authenticator,
            keys=key_manager,
            accounts=Accounts(db, clock),
            templates=templates,
            renderer=renderer,
            documents=documents,
            events=EventLog(db, clock),
            leaks=LeakResponder(db, clock, key_manager),
            github_keys=GitHubPublicKeys(settings.github_secret_scanning_keys),
            audit=audit,
            key_policies=KeyPolicies(db, clock),
            rotation=rotation,
            secrets=secrets,
            hooks=HookStore(
                db, clock, secrets, allow_private_targets=settings.allow_private_hook_targets
            ),
            delivery=DeliveryWorker(
                db,
                clock,
                secrets,
                allow_private_targets=settings.allow_private_hook_targets,
                lease=timedelta(seconds=settings.delivery_lease_seconds),
                concurrency=settings.delivery_concurrency,
                receivers={platform.name: platform.receivers for platform in platforms},
                chores=(documents.housekeeping, rotation.housekeeping, audit.housekeeping),
                count_outcome=lambda outcome: metrics.deliveries.labels(outcome).inc(),
            ),
            api_limits=ApiLimits(
                counted_in(redis, LocalCounts()),
                per_key=settings.rate_limit_per_key,
                failures_per_address=settings.failed_auth_limit_per_address,
                failures_per_value=settings.failed_auth_limit_per_key_value,
            ),
            sign_in_limits=SignInLimits(counted_in(redis, MachineCounts(settings.runtime_dir))),
            redis=redis,
            metrics=metrics,
            revocations=revocations,
            revocation_listener=(
                RevocationListener(settings.database_url, authenticator.forget)
                if RevocationListener.needed_for(settings.database_url)
                else None
            ),
            own_slots_dir=own_slots_dir,
        )

    def close(self) -> None:
        """Stop delivering, rendering and listening, write buffered usage and release database
        connections."""
        self.delivery.stop()
        if self.revocation_listener is not None:
            self.revocation_listener.stop()
        self.renderer.close()
        self.usage.close()
        self.db.dispose()
        self.revocations.close()
        if self.own_slots_dir is not None:
            shutil.rmtree(self.own_slots_dir, ignore_errors=True)


def _renderer(settings: Settings, slots_dir: Path) -> Renderer:
    upstream: PdfConverter | None = None
    if settings.render_upstream_url is not None and settings.render_upstream_key is not None:
        upstream = UpstreamPdfConverter(
            str(settings.render_upstream_url), settings.render_upstream_key.get_secret_value()
        )
    return Renderer(
        RenderPool(
            processes=settings.render_concurrency,
            memory_mb=settings.render_memory_mb,
            chromium_path=settings.chromium_path,
            warm=settings.pdf_engine,
        ),
        RenderSlots(slots_dir, capacity=settings.render_concurrency, queue=settings.render_queue),
        RenderLimits(
            txt_seconds=settings.render_txt_seconds,
            pdf_seconds=settings.render_pdf_seconds,
        ),
        upstream,
        default_engine=settings.pdf_engine,
    )


def services() -> Services:
    """The services of the app handling the current request."""
    return current_app.extensions[EXTENSION]
