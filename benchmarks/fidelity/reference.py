"""The reference print: each template as Chromium itself prints it (Playwright driving the system's
Chromium, ``page.pdf`` on A4, the template's own ``@page`` size preferred), with JavaScript off
and every request but ``data:`` URIs refused, as the service's engines see the corpus; and the
page setup that every print of the benchmark gets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Route, sync_playwright

from connector.rendering.page import PageSetup, PaperSize, with_style

CHROMIUM = Path("/usr/bin/chromium")
PAPER = "A4"
# The engines' default margins differ (Chromium's print none, WeasyPrint's 75 px, xhtml2pdf's
# its own): every print gets the same, over the template's, so that the score compares layouts.
# The paper is the template's own @page size, A4 without one.
PAGE = PageSetup(size=PaperSize.CSS, margin_mm=15)


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for the reference prints (``/usr/bin/chromium``, Debian's package)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


def print_pdf(browser: Browser, html: str) -> bytes:
    """``html`` as Chromium prints it to PDF, with the page setup ``PAGE`` (as the service's
    chromium engine adds it: a style after the template's)."""
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.route("**/*", _refuse)
        page.set_content(with_style(html, PAGE.css(), first=False), wait_until="load")
        return page.pdf(format=PAPER, print_background=True, prefer_css_page_size=True)
    finally:
        context.close()


def _refuse(route: Route) -> None:
    route.abort("blockedbyclient")
