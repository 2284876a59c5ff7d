"""HTML to PDF with xhtml2pdf, with an embedded Unicode font and no access to local files or
the network: a template is someone else's HTML, rendered on our server."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from xhtml2pdf import pisa
from xhtml2pdf.config.resources import ResourceAccessPolicy

from ..errors import PdfConversionFailed

FONTS = Path(__file__).with_name("fonts")
MAX_HTML_CHARS = 5_000_000

# DejaVu Sans covers Latin, Greek, Cyrillic and common symbols (the euro sign, dashes): without
# an embedded font xhtml2pdf falls back to Helvetica, whose Latin-1 glyphs turn "Łódź" into boxes.
# Templates naming the usual families get DejaVu under those names too, in all four faces.
_FAMILIES = (
    "DejaVu Sans",
    "Arial",
    "Helvetica",
    "Verdana",
    "sans-serif",
    "Times New Roman",
    "Times",
    "Georgia",
    "serif",
)
_FACES = (
    ("DejaVuSans.ttf", ""),
    ("DejaVuSans-Bold.ttf", "font-weight: bold;"),
    ("DejaVuSans-Oblique.ttf", "font-style: italic;"),
    ("DejaVuSans-BoldOblique.ttf", "font-weight: bold; font-style: italic;"),
)
_FONT_CSS = (
    "\n".join(
        f'@font-face {{ font-family: "{family}"; src: url("{file}"); {face} }}'
        for family in _FAMILIES
        for file, face in _FACES
    )
    + '\nhtml, body { font-family: "DejaVu Sans"; }'
)

# Only the bundled fonts may be read; nothing else on disk and nothing over the network. Time
# is limited by killing the render process (sandbox.py), not by xhtml2pdf's own soft check.
_POLICY = ResourceAccessPolicy.server(base_dir=FONTS, allow_remote=False, max_render_seconds=None)

# xhtml2pdf logs every refused resource and CSS quirk at WARNING: the template author's problem,
# not the operator's.
logging.getLogger("xhtml2pdf").setLevel(logging.ERROR)


def html_to_pdf(html: str) -> bytes:
    """A PDF of ``html``. Raises :class:`PdfConversionFailed` when it cannot be converted."""
    if len(html) > MAX_HTML_CHARS:
        raise PdfConversionFailed(
            f"The HTML is longer than {MAX_HTML_CHARS:,} characters; this service converts at "
            "most that."
        )
    output = io.BytesIO()
    try:
        status = pisa.CreatePDF(
            _with_font(html),
            dest=output,
            path=str(FONTS / "document.html"),
            encoding="utf-8",
            resource_policy=_POLICY,
        )
    except MemoryError:
        raise  # the render process's memory limit, reported as such by the pool
    except SystemError:
        # The interpreter's own failure ("returned NULL without setting an exception"): at the
        # address-space cap, an allocation inside a C call can fail this way.
        raise MemoryError from None
    except Exception as error:  # xhtml2pdf raises many kinds on odd HTML and CSS
        raise PdfConversionFailed(
            f"The HTML could not be converted to PDF: {error}. Check the template's markup and CSS."
        ) from None
    if status.err:
        raise PdfConversionFailed(
            "The HTML could not be converted to PDF. Check the template's markup and CSS."
        )
    return output.getvalue()


def _with_font(html: str) -> str:
    style = f"<style>{_FONT_CSS}</style>"
    lowered = html.lower()
    head = lowered.find("<head>")
    if head >= 0:
        return html[: head + 6] + style + html[head + 6 :]
    return style + html
