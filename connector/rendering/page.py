"""Page setup a template or a request may ask for: paper size, orientation, margins and page
numbers. Each engine gets it as CSS after the template's own (so it wins where both say
something); xhtml2pdf numbers pages with its own footer frame."""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field

PAGE_NUMBER_TEXT = "Page {page} of {pages}"
_FOOTER_STYLE = 'font-family: "DejaVu Sans", sans-serif; font-size: 9pt; color: #444;'


class PaperSize(enum.StrEnum):
    A4 = "A4"
    LETTER = "Letter"
    CSS = "css"  # the template's own @page size (the engine's default, A4, without one)


class Orientation(enum.StrEnum):
    PORTRAIT = "portrait"
    LANDSCAPE = "landscape"


class PageSetup(BaseModel):
    """How pages are laid out. Absent (null), the template's own CSS decides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: PaperSize = Field(
        default=PaperSize.A4, description="A4, Letter, or css: the template's @page size."
    )
    orientation: Orientation = Field(
        default=Orientation.PORTRAIT, description="Ignored with size css."
    )
    margin_mm: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Every margin, in millimetres; default: the template's, or the engine's.",
    )
    page_numbers: bool = Field(
        default=False,
        description='"Page 1 of 3" centred in the bottom margin (which needs to be about 10 mm '
        "or more).",
    )

    def _page_properties(self) -> str:
        properties = []
        if self.size is not PaperSize.CSS:
            properties.append(f"size: {self.size.value} {self.orientation.value};")
        if self.margin_mm is not None:
            properties.append(f"margin: {self.margin_mm:g}mm;")
        return " ".join(properties)

    def css(self) -> str:
        """The CSS page rule (with a CSS Paged Media footer): WeasyPrint and Chromium."""
        footer = ""
        if self.page_numbers:
            content = PAGE_NUMBER_TEXT.format(page='" counter(page) "', pages='" counter(pages) "')
            footer = f' @bottom-center {{ content: "{content}"; {_FOOTER_STYLE} }}'
        return f"@page {{ {self._page_properties()}{footer} }}"

    def xhtml2pdf_css(self) -> str:
        """The page rule as xhtml2pdf reads it: its footer is a frame showing an element."""
        footer = ""
        if self.page_numbers:
            footer = (
                f" @frame {XHTML2PDF_FOOTER_ID} {{ -pdf-frame-content: {XHTML2PDF_FOOTER_ID}; "
                "left: 10mm; right: 10mm; bottom: 2mm; height: 8mm; }"
            )
        return f"@page {{ {self._page_properties()}{footer} }}"

    def xhtml2pdf_footer(self) -> str:
        if not self.page_numbers:
            return ""
        text = PAGE_NUMBER_TEXT.format(page="<pdf:pagenumber>", pages="<pdf:pagecount>")
        return (
            f'<div id="{XHTML2PDF_FOOTER_ID}" style="text-align: center; {_FOOTER_STYLE}">'
            f"{text}</div>"
        )


XHTML2PDF_FOOTER_ID = "bridge_page_footer"


def with_style(html: str, css: str, *, first: bool) -> str:
    """``html`` with a style element at its start (``first``: the template's CSS overrides it)
    or at its end (it overrides the template's)."""
    style = f"<style>{css}</style>"
    if not first:
        return html + style
    head = html.lower().find("<head>")
    if head >= 0:
        return html[: head + 6] + style + html[head + 6 :]
    return style + html


# WeasyPrint's and Chromium's default face, as xhtml2pdf's: the bundled DejaVu Sans.
DEFAULT_CSS = 'html { font-family: "DejaVu Sans", sans-serif; }'


def with_page_setup(html: str, page: PageSetup | None) -> str:
    """``html`` as WeasyPrint and Chromium convert it: the default face under the template's
    CSS, the page setup over it."""
    html = with_style(html, DEFAULT_CSS, first=True)
    return html if page is None else with_style(html, page.css(), first=False)
