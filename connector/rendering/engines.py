"""The PDF engines a render may use, and what each needs installed. Web workers choose an engine
here (the request's, the template's or the deployment's); render processes run it
(:mod:`.sandbox`)."""

from __future__ import annotations

import enum
from pathlib import Path

from ..errors import EngineUnavailable, PdfConversionFailed

DEFAULT_CHROMIUM = Path("/usr/bin/chromium")
MAX_HTML_CHARS = 5_000_000


class Engine(enum.StrEnum):
    XHTML2PDF = "xhtml2pdf"  # pure Python, always installed: classic table layouts
    WEASYPRINT = "weasyprint"  # modern CSS (flex, grid), every script; needs Pango
    CHROMIUM = "chromium"  # as the browser prints; needs Chromium

    @classmethod
    def _missing_(cls, value: object) -> Engine | None:
        return cls.__members__.get(value.upper()) if isinstance(value, str) else None

    @property
    def install_hint(self) -> str:
        return _INSTALL[self]


_INSTALL = {
    Engine.XHTML2PDF: "pip install templateto-bridge",
    Engine.WEASYPRINT: "pip install 'templateto-bridge[weasyprint]' and, on Debian, apt-get "
    "install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0",
    Engine.CHROMIUM: "pip install 'templateto-bridge[chromium]' and apt-get install chromium "
    "(or set BRIDGE_CHROMIUM_PATH to a Chromium)",
}


def unavailable(engine: Engine, why: str) -> EngineUnavailable:
    return EngineUnavailable(
        f"The {engine} PDF engine is not available on this service ({why}). Choose another "
        f"engine, or ask its operator to install it: {engine.install_hint}.",
        details={"engine": engine.value},
    )


def check_size(html: str) -> None:
    if len(html) > MAX_HTML_CHARS:
        raise PdfConversionFailed(
            f"The HTML is longer than {MAX_HTML_CHARS:,} characters; this service converts at "
            "most that."
        )


def conversion_failed(error: Exception) -> PdfConversionFailed:
    return PdfConversionFailed(
        f"The HTML could not be converted to PDF: {error}. Check the template's markup and CSS."
    )
