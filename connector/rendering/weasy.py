"""HTML to PDF with WeasyPrint (the optional ``weasyprint`` extra): modern CSS (flex, grid,
Paged Media) and every script the system's fonts cover, shaped by Pango and HarfBuzz. It reads
nothing but ``data:`` URIs: no local files, no network."""

from __future__ import annotations

import importlib.util
import logging

from ..errors import BridgeError
from .engines import Engine, check_size, conversion_failed, unavailable
from .page import PageSetup, with_page_setup

# WeasyPrint logs each refused resource (at ERROR) and unknown CSS property: the template
# author's concern, not the operator's.
logging.getLogger("weasyprint").setLevel(logging.CRITICAL)


def available() -> bool:
    """Installed, with the libraries it loads (without loading them: see html_to_pdf)."""
    import ctypes.util

    return importlib.util.find_spec("weasyprint") is not None and all(
        ctypes.util.find_library(name) for name in ("pango-1.0", "pangoft2-1.0")
    )


def html_to_pdf(html: str, page: PageSetup | None) -> bytes:
    try:
        # Imported by the first render that uses it: render processes that never do stay about
        # 110 MB smaller (it and the fonts it loads), further from their memory limit.
        import weasyprint
    except (ImportError, OSError) as error:  # an optional extra, and it needs Pango
        raise unavailable(Engine.WEASYPRINT, f"{type(error).__name__}: {error}") from None
    check_size(html)
    html = with_page_setup(html, page)
    try:
        # Templates are someone else's HTML: only what they carry inline may be read.
        fetcher = weasyprint.urls.URLFetcher(allowed_protocols={"data"}, allow_redirects=False)
        pdf: bytes = weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf()
        return pdf
    except (MemoryError, BridgeError):
        raise
    except Exception as error:  # WeasyPrint raises many kinds on odd HTML and CSS
        raise conversion_failed(error) from None
