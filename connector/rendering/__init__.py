"""Templates plus data give files. Liquid always runs here (templates, their limits and strict
mode are ours); the HTML-to-PDF step is a :class:`PdfConverter`: xhtml2pdf in this process by
default, or an upstream TemplateTo-compatible API (:mod:`.upstream`)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from . import liquid
from .pdf import LocalPdfConverter
from .slots import PdfSlots
from .text import html_to_text


class Format(enum.StrEnum):
    PDF = "pdf"
    TXT = "txt"

    @property
    def media_type(self) -> str:
        """Flask adds ``charset=utf-8`` to text types itself."""
        return "application/pdf" if self is Format.PDF else "text/plain"


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


class PdfConverter(Protocol):
    def convert(self, html: str) -> bytes: ...


class Renderer:
    def __init__(self, pdf: PdfConverter | None = None, slots: PdfSlots | None = None) -> None:
        self._pdf = pdf or LocalPdfConverter()
        # Shared by every render of this process.
        self.pdf_slots = slots or PdfSlots(concurrency=2, queue=2)

    def _convert(self, html: str) -> bytes:
        with self.pdf_slots.held():
            return self._pdf.convert(html)

    def render(
        self,
        template: TemplateSource,
        data: Mapping[str, Any],
        format: Format,
        *,
        strict: bool = False,
        preserve_line_breaks: bool = False,
    ) -> RenderedFile:
        if format is Format.TXT and template.text_body is not None:
            text = liquid.render(template.text_body, data, strict=strict)
            # "replace": JSON can carry lone surrogates, which UTF-8 cannot.
            return RenderedFile(text.encode("utf-8", "replace"), format)
        if preserve_line_breaks:
            # HTML collapses line breaks, in the PDF and in a TXT derived from the HTML alike.
            try:
                data = _with_line_breaks(data)
            except RecursionError:
                raise liquid.TemplateRenderError("The data is nested too deeply.") from None
        html = liquid.render(template.body, data, strict=strict)
        if format is Format.TXT:
            return RenderedFile(html_to_text(html).encode("utf-8", "replace"), format)
        return RenderedFile(self._convert(html), format)

    def html_to_pdf(self, html: str) -> RenderedFile:
        return RenderedFile(self._convert(html), Format.PDF)
