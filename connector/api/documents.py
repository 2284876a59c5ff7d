"""``/v1/documents``: render and record a document; list and fetch the records. Files are
downloaded through the signed ``file_url`` (``/files/<token>``), which needs no API key."""

from __future__ import annotations

import io

from flask import Blueprint, Response, request, send_file
from pydantic import BaseModel, Field

from ..clients import classify
from ..documents import DocumentInfo, DocumentPage, DownloadedFile, NewDocument
from ..paging import PageQuery
from ..rendering.coverage import WARNING_HEADER, missing_scripts_warning
from ..services import services
from .security import current_principal, key_protected_blueprint

blueprint = key_protected_blueprint("documents", __name__, "/v1/documents", "Documents")
downloads = Blueprint("downloads", __name__)


class DocumentPath(BaseModel):
    document_id: str


class DocumentHeaders(BaseModel):
    idempotency_key: str | None = Field(
        default=None,
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Any unique value, e.g. a UUID. A retry with the same key and request "
        "answers the document the first made, instead of making another.",
    )


class DocumentQuery(PageQuery):
    template_id: str | None = Field(default=None, description="Only this template's documents.")


@blueprint.post("", responses={201: DocumentInfo})
def create_document(body: NewDocument, header: DocumentHeaders) -> tuple[dict, int, dict]:
    """Render a template with data into a PDF or TXT file and record it. The answer's file_url
    downloads the file without an API key until expires_at. Send an Idempotency-Key to retry
    safely."""
    document = services().documents.create(
        current_principal().account_id,
        body,
        classify(request.headers.get("User-Agent")),
        idempotency_key=header.idempotency_key,
    )
    headers = {}
    if document.missing_scripts:
        headers[WARNING_HEADER] = missing_scripts_warning(document.missing_scripts)
    return document.model_dump(mode="json"), 201, headers


@blueprint.get("", responses={200: DocumentPage})
def list_documents(query: DocumentQuery) -> dict:
    """The account's documents, newest first."""
    page = services().documents.list(current_principal().account_id, query, query.template_id)
    return page.model_dump(mode="json")


@blueprint.get("/<document_id>", responses={200: DocumentInfo})
def get_document(path: DocumentPath) -> dict:
    document = services().documents.get(current_principal().account_id, path.document_id)
    return document.model_dump(mode="json")


def file_response(file: DownloadedFile) -> Response:
    """A document's file as an attachment with its name, kept out of shared caches."""
    response = send_file(
        io.BytesIO(file.content),
        mimetype=file.format.media_type,
        as_attachment=True,
        download_name=file.filename,
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@downloads.get("/files/<token>")
def download(token: str) -> Response:
    response = file_response(services().documents.download(token))
    # The link is a bearer credential for this file: keep it out of referers too.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
