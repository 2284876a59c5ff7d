"""HTML to PDF with xhtml2pdf (the default engine), with an embedded Unicode font and no access
to local files or the network: a template is someone else's HTML, rendered on our server."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from xhtml2pdf import pisa
from xhtml2pdf.config.resources import ResourceAccessPolicy

from ..errors import PdfConversionFailed
from .engines import check_size, conversion_failed
from .page import PageSetup, with_style

FONTS = Path(__file__).with_name("fonts")
FONT_FILES = tuple(sorted(FONTS.glob("*.ttf")))

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
FONT_CSS = (
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


def html_to_pdf(html: str, page: PageSetup | None = None) -> bytes:
    """A PDF of ``html``. Raises :class:`PdfConversionFailed` when it cannot be converted."""
    check_size(html)
    html = with_style(html, FONT_CSS, first=True)
    if page is not None:
        html = with_style(html + page.xhtml2pdf_footer(), page.xhtml2pdf_css(), first=False)
    output = io.BytesIO()
    try:
        status = pisa.CreatePDF(
            html,
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
        raise conversion_failed(error) from None
    if status.err:
        raise PdfConversionFailed(
            "The HTML could not be converted to PDF. Check the template's markup and CSS."
        )
    return output.getvalue()
