"""Templates plus data give files. Liquid, HTML to text and the PDF engines (:mod:`.engines`)
run only in render processes (:mod:`.sandbox`, :mod:`.pool`), within the machine's render slots
(:mod:`.slots`); a web worker only waits for their answer. In upstream mode the PDF step is a
TemplateTo-compatible API instead (:mod:`.upstream`)."""

from __future__ import annotations

import enum
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import TemplateRenderError
from .engines import Engine
from .page import PageSetup
from .pool import RenderPool
from .slots import RenderSlots


class Format(enum.StrEnum):
    PDF = "pdf"
    TXT = "txt"

    @classmethod
    def _missing_(cls, value: object) -> Format | None:
        # Any case: a workflow may map "PDF" from an earlier step.
        return cls.__members__.get(value.upper()) if isinstance(value, str) else None

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
    engine: Engine | None = None  # None: the request's choice, or the deployment's default
    page: PageSetup | None = None


@dataclass(frozen=True)
class RenderedFile:
    content: bytes
    format: Format
    # Scripts the engine cannot print correctly: "Han", "Thai", … (characters its fonts lack,
    # printed as boxes; for xhtml2pdf also scripts that need shaping or right-to-left order)
    missing_scripts: tuple[str, ...] = ()

    @property
    def media_type(self) -> str:
        return self.format.media_type


@dataclass(frozen=True)
class RenderJob:
    """What a render process needs to render a template: the data travels pickled."""

    body: str
    text_body: str | None
    pickled_data: bytes
    strict: bool
    preserve_line_breaks: bool
    engine: Engine = Engine.XHTML2PDF
    page: PageSetup | None = None


class PdfConverter(Protocol):
    def convert(self, html: str) -> bytes: ...


@dataclass(frozen=True)
class RenderLimits:
    """Wall-clock seconds per render, CPU seconds too."""

    txt_seconds: float = 5.0
    pdf_seconds: float = 20.0


class Renderer:
    """Renders in the pool's processes, within the machine's render slots. With an ``upstream``
    converter, Liquid still runs in the pool and the HTML goes to the upstream for its PDF."""

    def __init__(
        self,
        pool: RenderPool,
        slots: RenderSlots,
        limits: RenderLimits,
        upstream: PdfConverter | None = None,
        default_engine: Engine = Engine.XHTML2PDF,
    ) -> None:
        self._pool = pool
        self._slots = slots
        self._limits = limits
        self._upstream = upstream
        self._default_engine = default_engine
        self._available: list[str] | None = None

    def render(
        self,
        account_id: str,
        template: TemplateSource,
        data: Mapping[str, Any],
        format: Format,
        *,
        strict: bool = False,
        preserve_line_breaks: bool = False,
        engine: Engine | None = None,
    ) -> RenderedFile:
        """``engine`` applies where the template names none (else the deployment's default)."""
        job = RenderJob(
            template.body,
            template.text_body,
            _pickled(data),
            strict,
            preserve_line_breaks,
            template.engine or engine or self._default_engine,
            template.page,
        )
        with self._slots.held(account_id):
            if format is Format.TXT:
                content = self._pool.run("render_text", job, seconds=self._limits.txt_seconds)
            elif self._upstream is not None:
                html = self._pool.run("render_html", job, seconds=self._limits.txt_seconds)
                content = self._upstream.convert(html)
            else:
                rendered: RenderedFile = self._pool.run(
                    "render_pdf", job, seconds=self._limits.pdf_seconds
                )
                return rendered
        return RenderedFile(content, format)

    def html_to_pdf(
        self,
        account_id: str,
        html: str,
        *,
        engine: Engine | None = None,
        page: PageSetup | None = None,
    ) -> RenderedFile:
        with self._slots.held(account_id):
            if self._upstream is not None:
                return RenderedFile(self._upstream.convert(html), Format.PDF)
            rendered: RenderedFile = self._pool.run(
                "convert_html",
                html,
                engine or self._default_engine,
                page,
                seconds=self._limits.pdf_seconds,
            )
        return rendered

    def engines(self) -> dict[str, Any]:
        """For readiness and the docs: the default engine, and those this deployment has."""
        if self._upstream is not None:
            return {"default": "upstream", "available": ["upstream"]}
        if self._available is None:
            self._available = self._pool.run("available_engines", seconds=self._limits.txt_seconds)
        return {"default": self._default_engine.value, "available": self._available}

    def variables(self, account_id: str, *sources: str) -> list[str]:
        """The variables the sources read, sorted; ``TemplateSyntaxError`` when one does not
        parse (with its line and column)."""
        with self._slots.held(account_id):
            return self._pool.run("template_variables", sources, seconds=self._limits.txt_seconds)

    def start(self) -> None:
        self._pool.start()

    def health(self) -> str:
        return self._pool.health()

    def close(self) -> None:
        self._pool.close()


def _pickled(data: Mapping[str, Any]) -> bytes:
    try:
        return pickle.dumps(dict(data), protocol=pickle.HIGHEST_PROTOCOL)
    except RecursionError:
        raise TemplateRenderError("The data is nested too deeply.") from None
