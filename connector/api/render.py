"""``/render``: TemplateTo's REST render API, same paths and behaviour, so its existing clients
work against this service. The body is the template's JSON data; the answer is the file, or its
bytes base64-encoded as a JSON string (``.../as-byte-array``)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Response, jsonify, request
from pydantic import BaseModel, Field

from ..errors import DataNotObject, InvalidBase64Html
from ..rendering import Format, RenderedFile
from ..rendering.coverage import WARNING_HEADER, missing_scripts_warning
from ..rendering.engines import Engine
from ..rendering.page import PageSetup
from ..services import services
from .security import current_principal, key_protected_blueprint

blueprint = key_protected_blueprint("render", __name__, "/render", "Render (TemplateTo-compatible)")

_DATA_BODY = {
    "requestBody": {
        "required": False,
        "description": "The template's data: a JSON object.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


class RenderPath(BaseModel):
    template_id: str = Field(alias="templateId")


class RenderQuery(BaseModel):
    strict: bool = Field(
        default=False, description="A missing variable is a 422, not an empty string."
    )


class HtmlBody(BaseModel):
    base64HtmlString: str = Field(description="The HTML to convert, base64-encoded.")
    engine: Engine | None = Field(
        default=None,
        description="xhtml2pdf, weasyprint or chromium; default: the service's (GET /readyz "
        "lists those it has).",
    )
    page: PageSetup | None = Field(
        default=None, description="Paper size, orientation, margins, page numbers."
    )


def _data() -> dict[str, Any]:
    data = request.get_json(silent=True) if request.get_data(cache=True) else {}
    if not isinstance(data, dict):
        raise DataNotObject(
            "The body must be a JSON object with the template's data, "
            'e.g. {"customer": {"name": "Ada"}}, sent with Content-Type: application/json.'
        )
    return data


def _render(template_id: str, format: Format, strict: bool) -> RenderedFile:
    account_id = current_principal().account_id
    source = services().templates.source(account_id, template_id)
    return services().renderer.render(account_id, source, _data(), format, strict=strict)


def _file(rendered: RenderedFile, name: str) -> Response:
    response = Response(rendered.content, mimetype=rendered.media_type)
    response.headers["Content-Disposition"] = f'inline; filename="{name}.{rendered.format}"'
    return _warned(response, rendered)


def _warned(response: Response, rendered: RenderedFile) -> Response:
    """A render that printed boxes says so."""
    if rendered.missing_scripts:
        response.headers[WARNING_HEADER] = missing_scripts_warning(rendered.missing_scripts)
    return response


def _byte_array(rendered: RenderedFile) -> Response:
    return _warned(jsonify(base64.b64encode(rendered.content).decode("ascii")), rendered)


@blueprint.post("/pdf/<templateId>", openapi_extensions=_DATA_BODY)
def render_pdf(path: RenderPath, query: RenderQuery) -> Response:
    """Render a template to PDF."""
    return _file(_render(path.template_id, Format.PDF, query.strict), path.template_id)


@blueprint.post("/txt/<templateId>", openapi_extensions=_DATA_BODY)
def render_txt(path: RenderPath, query: RenderQuery) -> Response:
    """Render a template to plain text."""
    return _file(_render(path.template_id, Format.TXT, query.strict), path.template_id)


@blueprint.post("/pdf/<templateId>/as-byte-array", openapi_extensions=_DATA_BODY)
def render_pdf_bytes(path: RenderPath, query: RenderQuery) -> Response:
    """Render a template to PDF, answered as a base64 JSON string."""
    return _byte_array(_render(path.template_id, Format.PDF, query.strict))


@blueprint.post("/txt/<templateId>/as-byte-array", openapi_extensions=_DATA_BODY)
def render_txt_bytes(path: RenderPath, query: RenderQuery) -> Response:
    """Render a template to plain text, answered as a base64 JSON string."""
    return _byte_array(_render(path.template_id, Format.TXT, query.strict))


@blueprint.post("/pdf/fromhtml")
def render_pdf_from_html(body: HtmlBody) -> Response:
    """Convert HTML (base64-encoded in ``base64HtmlString``) to PDF."""
    try:
        html = base64.b64decode(body.base64HtmlString, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):  # ValueError: not ASCII at all
        raise InvalidBase64Html(
            "base64HtmlString is not base64-encoded UTF-8 HTML. Encode the HTML's UTF-8 bytes "
            "with standard base64."
        ) from None
    account_id = current_principal().account_id
    rendered = services().renderer.html_to_pdf(account_id, html, engine=body.engine, page=body.page)
    return _file(rendered, "document")
