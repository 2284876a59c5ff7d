"""Templates plus data give files. ``LocalRenderer`` does it in this process with python-liquid
and xhtml2pdf; a renderer forwarding to an upstream TemplateTo-compatible API can take its place
behind the same methods."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import liquid
from .pdf import html_to_pdf
from .text import html_to_text


class Format(enum.StrEnum):
    PDF = "pdf"
    TXT = "txt"

    @property
    def media_type(self) -> str:
        return "application/pdf" if self is Format.PDF else "text/plain; charset=utf-8"


@dataclass(frozen=True)
class TemplateSource:
    """A stored template as renderers see it: the local one renders the bodies, one forwarding
    to an upstream API would name the template by id."""

    id: str
    name: str
    body: str
    text_body: str | None = None


@dataclass(frozen=True)
class RenderedFile:
    content: bytes
    format: Format

    @property
    def media_type(self) -> str:
        return self.format.media_type


def _with_line_breaks(value: Any) -> Any:
    """Data whose strings show their line breaks in HTML, as TemplateTo's option does."""
    if isinstance(value, str):
        return value.replace("\r\n", "\n").replace("\n", "<br>\n")
    if isinstance(value, Mapping):
        return {key: _with_line_breaks(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_line_breaks(item) for item in value]
    return value


class LocalRenderer:
    def render(
        self,
        template: TemplateSource,
        data: Mapping[str, Any],
        format: Format,
        *,
        strict: bool = False,
        preserve_line_breaks: bool = False,
    ) -> RenderedFile:
        if format is Format.TXT:
            if template.text_body is not None:
                text = liquid.render(template.text_body, data, strict=strict)
            else:
                text = html_to_text(liquid.render(template.body, data, strict=strict))
            return RenderedFile(text.encode("utf-8"), format)
        if preserve_line_breaks:
            data = _with_line_breaks(data)
        html = liquid.render(template.body, data, strict=strict)
        return RenderedFile(html_to_pdf(html), format)

    def html_to_pdf(self, html: str) -> RenderedFile:
        return RenderedFile(html_to_pdf(html), Format.PDF)
