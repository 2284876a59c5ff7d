"""Documents: every render through ``/v1/documents`` is recorded, its file kept for a while and
reachable through a signed link."""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from .clients import Client
from .clock import Clock
from .db import Database
from .errors import DocumentExpired, DocumentNotFound, IdempotencyKeyReused, TemplateRenderError
from .events import EventType, record
from .links import DownloadLinks
from .models import Document, new_id
from .paging import PageQuery, newest_first, next_cursor
from .rendering import Format, Renderer
from .rendering.engines import Engine
from .storage import FileStore
from .templates import TemplateStore

log = logging.getLogger(__name__)

PURGE_EVERY = timedelta(minutes=10)
PURGE_BATCH = 500
_UNSAFE_IN_FILENAMES = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


class NewDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_id: str
    format: Format = Format.PDF
    data: dict[str, Any] = Field(default_factory=dict, description="The template's data.")
    preserve_line_breaks: bool = Field(
        default=False, description="Line breaks in the data's text show in the PDF."
    )
    strict: bool = Field(
        default=False, description="A missing variable is a 422, not an empty string."
    )
    filename: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = (
        Field(default=None, description="Default: the template's name and the format.")
    )
    engine: Engine | None = Field(
        default=None,
        description="The PDF engine where the template names none: xhtml2pdf, weasyprint or "
        "chromium; default: the service's.",
    )


class DocumentInfo(BaseModel):
    id: str
    template_id: str | None = Field(description="Null once the template has been deleted.")
    template_name: str
    format: Format
    filename: str
    size: int = Field(description="Bytes.")
    sha256: str
    client: str = Field(description="zapier, n8n or other: who asked for the render.")
    created_at: datetime
    expires_at: datetime = Field(description="When the file and its link stop being available.")
    file_url: str | None = Field(
        description="A signed download link needing no API key; null once the file expired."
    )
    missing_scripts: builtins.list[str] = Field(
        default_factory=builtins.list,
        description='Scripts ("Han", "Arabic", …) the engine could not print correctly: '
        "characters its fonts lack (printed as boxes) and, with xhtml2pdf, scripts that need "
        "shaping or right-to-left order; empty when none.",
    )


class DocumentPage(BaseModel):
    data: builtins.list[DocumentInfo]
    next_cursor: str | None


@dataclass(frozen=True)
class DownloadedFile:
    filename: str
    format: Format
    content: bytes


def _digest(request: NewDocument) -> str:
    # The data as it came, not through pydantic's serializer, which stops 255 levels deep: the
    # same data renders with and without an Idempotency-Key.
    # No engine named digests as before engines existed: a retry across the upgrade still matches.
    unnamed = {"engine"} if request.engine is None else set()
    fields = {
        **request.model_dump(mode="json", exclude={"data", *unnamed}),
        "data": request.data,
    }
    try:
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    except RecursionError:
        raise TemplateRenderError("The data is nested too deeply.") from None
    return hashlib.sha256(canonical.encode()).hexdigest()


def _filename(requested: str | None, template_name: str, format: Format) -> str:
    stem = _UNSAFE_IN_FILENAMES.sub("_", requested or template_name).strip(" ._") or "document"
    suffix = f".{format}"
    return stem if stem.lower().endswith(suffix) else stem + suffix


class DocumentStore:
    def __init__(
        self,
        db: Database,
        files: FileStore,
        renderer: Renderer,
        templates: TemplateStore,
        links: DownloadLinks,
        clock: Clock,
        ttl: timedelta,
    ) -> None:
        self._db = db
        self._files = files
        self._renderer = renderer
        self._templates = templates
        self._links = links
        self._clock = clock
        self._ttl = ttl
        self._next_purge = clock.now()

    def create(
        self,
        account_id: str,
        request: NewDocument,
        client: Client,
        *,
        idempotency_key: str | None = None,
    ) -> DocumentInfo:
        """Render and record a document. A failed render or write leaves neither a row nor a
        file behind. With an ``idempotency_key`` the account used before for the same request,
        the document it made then (a client retrying after losing the answer)."""
        digest = None
        if idempotency_key is not None:
            digest = _digest(request)
            earlier = self._made_with(account_id, idempotency_key, digest)
            if earlier is not None:
                return earlier
        template = self._templates.source(account_id, request.template_id)
        rendered = self._renderer.render(
            account_id,
            template,
            request.data,
            request.format,
            strict=request.strict,
            preserve_line_breaks=request.preserve_line_breaks,
            engine=request.engine,
        )
        now = self._clock.now()
        document = Document(
            id=new_id("doc_"),
            account_id=account_id,
            template_id=template.id,
            template_name=template.name,
            format=request.format.value,
            filename=_filename(request.filename, template.name, request.format),
            size=len(rendered.content),
            sha256=hashlib.sha256(rendered.content).hexdigest(),
            client=client.value,
            created_at=now,
            expires_at=now + self._ttl,
            idempotency_key=idempotency_key,
            request_digest=digest,
            missing_scripts=builtins.list(rendered.missing_scripts),
        )
        document.storage_key = f"{account_id}/{document.id}.{request.format}"
        info = self._info(document, now)
        self._files.put(document.storage_key, rendered.content)
        try:
            with self._db.transaction() as session:
                session.add(document)
                record(
                    session,
                    account_id,
                    EventType.DOCUMENT_CREATED,
                    info.model_dump(mode="json"),
                    now,
                )
        except IntegrityError:
            self._files.delete(document.storage_key)
            # The same key, sent again while this one rendered: the first to commit made it.
            if idempotency_key is None:
                raise
            earlier = self._made_with(account_id, idempotency_key, digest)
            if earlier is None:
                raise
            return earlier
        except BaseException:
            self._files.delete(document.storage_key)
            raise
        return info

    def _made_with(
        self, account_id: str, idempotency_key: str, digest: str | None
    ) -> DocumentInfo | None:
        with self._db.transaction() as session:
            document = session.scalars(
                select(Document).where(
                    Document.account_id == account_id,
                    Document.idempotency_key == idempotency_key,
                )
            ).one_or_none()
        if document is None:
            return None
        if document.request_digest != digest:
            raise IdempotencyKeyReused(
                f"This Idempotency-Key was already used for another request, which made "
                f"{document.id}. Send a new key with each new document, and the same key only "
                "to retry the same request.",
            )
        return self._info(document, self._clock.now())

    def list(
        self, account_id: str, page: PageQuery, template_id: str | None = None
    ) -> DocumentPage:
        query = select(Document).where(Document.account_id == account_id)
        if template_id is not None:
            query = query.where(Document.template_id == template_id)
        with self._db.transaction() as session:
            rows = builtins.list(session.scalars(newest_first(query, Document, page)))
        cursor = next_cursor(rows, page)
        now = self._clock.now()
        return DocumentPage(data=[self._info(row, now) for row in rows], next_cursor=cursor)

    def get(self, account_id: str, document_id: str) -> DocumentInfo:
        with self._db.transaction() as session:
            document = self._find(session, document_id, account_id)
        return self._info(document, self._clock.now())

    def download(self, token: str) -> DownloadedFile:
        """The file a signed link names."""
        now = self._clock.now()
        document_id = self._links.document_id(token, now)
        with self._db.transaction() as session:
            document = self._find(session, document_id)
        return self._file(document)

    def file(self, account_id: str, document_id: str) -> DownloadedFile:
        """A document's file, for callers that take the bytes in the answer (n8n)."""
        with self._db.transaction() as session:
            document = self._find(session, document_id, account_id)
        return self._file(document)

    def _file(self, document: Document) -> DownloadedFile:
        content = None if document.purged_at else self._files.get(document.storage_key)
        if content is None:
            raise DocumentExpired("This document's file is no longer stored. Render it again.")
        return DownloadedFile(document.filename, Format(document.format), content)

    def housekeeping(self) -> None:
        """Purge expired files at most every ``PURGE_EVERY``; run by the delivery worker's loop.
        Best effort: a failure is logged and tried again next time."""
        now = self._clock.now()
        if now < self._next_purge:
            return
        self._next_purge = now + PURGE_EVERY
        try:
            while self.purge_expired():
                pass
        except (OSError, SQLAlchemyError):
            log.exception("purging expired documents failed; trying again later")

    def purge_expired(self) -> int:
        """Delete the files of expired documents (a batch at a time); their records stay."""
        now = self._clock.now()
        with self._db.transaction() as session:
            expired = builtins.list(
                session.scalars(
                    select(Document)
                    .where(Document.expires_at <= now, Document.purged_at.is_(None))
                    .limit(PURGE_BATCH)
                )
            )
            for document in expired:
                self._files.delete(document.storage_key)
                document.purged_at = now
        return len(expired)

    def _info(self, document: Document, now: datetime) -> DocumentInfo:
        available = document.purged_at is None and now < document.expires_at
        return DocumentInfo(
            id=document.id,
            template_id=document.template_id,
            template_name=document.template_name,
            format=Format(document.format),
            filename=document.filename,
            size=document.size,
            sha256=document.sha256,
            client=document.client,
            created_at=document.created_at,
            expires_at=document.expires_at,
            file_url=self._links.url(document.id, document.expires_at) if available else None,
            missing_scripts=document.missing_scripts or [],
        )

    @staticmethod
    def _find(session: Session, document_id: str, account_id: str | None = None) -> Document:
        query = select(Document).where(Document.id == document_id)
        if account_id is not None:
            query = query.where(Document.account_id == account_id)
        document = session.scalars(query).one_or_none()
        if document is None:
            raise DocumentNotFound(f"There is no document {document_id!r} in this account.")
        return document
