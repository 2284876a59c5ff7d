"""HTML to PDF as Chromium prints it, driven by Playwright: one warm browser per render process
(started with the process where Chromium is the default engine, else by its first Chromium
render; kept for the next), JavaScript off, and every request refused but ``data:`` URIs.

The render process's kernel limits do not suit Chromium: it reserves far more address space than
it uses, so under ``RLIMIT_AS`` it cannot start. Playwright's driver and the browser are started
without the render process's limits, and bounded otherwise: while a render runs, a watch thread
adds up their resident memory and kills them all once it has grown by more than the render
memory limit since the render began (the render is then answered as over its memory, and the
render process replaced); past its time, the pool kills them with the render process
(:mod:`.pool`). A browser that has kept half that growth after its renders is replaced with its
render process too (:func:`ChromiumPrinter.outgrown`)."""

from __future__ import annotations

import os
import resource
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import processes
from .engines import Engine, check_size, conversion_failed, unavailable
from .page import PageSetup, with_page_setup

WATCH_SECONDS = 0.1
# Where the template's CSS sets none: Chrome's print dialog's, room for page numbers.
_MARGINS = {side: "10mm" for side in ("top", "right", "bottom", "left")}
_ARGS = ["--disable-gpu", "--disable-dev-shm-usage", "--disable-extensions", "--mute-audio"]


class ChromiumPrinter:
    def __init__(self, executable: Path, memory_bytes: int) -> None:
        self._executable = executable
        self._memory_bytes = memory_bytes
        self._page: Any = None
        self._idle_bytes = 0  # the browser's resident size once started

    def available(self) -> bool:
        return os.access(self._executable, os.X_OK) and _playwright_installed()

    def html_to_pdf(self, html: str, page: PageSetup | None) -> bytes:
        check_size(html)
        html = with_page_setup(html, page)
        tab = self._tab()
        from playwright.sync_api import Error as PlaywrightError

        with _MemoryWatch(_resident() + self._memory_bytes) as watch:
            try:
                tab.set_content(html, wait_until="load")
                pdf: bytes = tab.pdf(
                    format="A4", margin=_MARGINS, prefer_css_page_size=True, print_background=True
                )
            except PlaywrightError as error:
                if watch.tripped:
                    raise MemoryError from None
                if not tab.context.browser.is_connected():  # it crashed: the next render starts one
                    self._page = None
                raise conversion_failed(error) from None
        return pdf

    def outgrown(self) -> bool:
        """Whether the browser kept more than half the memory limit after its renders."""
        return self._page is not None and _resident() > self._idle_bytes + self._memory_bytes // 2

    def start(self) -> None:
        """Start the browser now (a render process's start is not a render's time)."""
        self._tab()

    def _tab(self) -> Any:
        if self._page is None:
            self._page = self._start()
        return self._page

    def _start(self) -> Any:
        if not os.access(self._executable, os.X_OK):
            raise unavailable(Engine.CHROMIUM, f"no Chromium at {self._executable}")
        try:
            from playwright.sync_api import Error as PlaywrightError
            from playwright.sync_api import sync_playwright
        except ImportError as error:
            raise unavailable(Engine.CHROMIUM, str(error)) from None
        with _without_own_limits():
            driver = sync_playwright().start()
        try:
            with _without_own_limits():
                browser = driver.chromium.launch(executable_path=self._executable, args=_ARGS)
            context = browser.new_context(java_script_enabled=False, service_workers="block")
            context.route("**/*", _only_data_uris)
            tab = context.new_page()
            tab.pdf()  # its renderer process is up: what renders use is measured from here
        except PlaywrightError as error:
            driver.stop()  # else each render that tries again leaves a driver behind
            raise unavailable(Engine.CHROMIUM, f"it did not start: {error.message}") from None
        self._idle_bytes = _resident()
        return tab


def _only_data_uris(route: Any) -> None:
    if route.request.url.startswith("data:"):
        route.continue_()
    else:
        route.abort("blockedbyclient")


def _playwright_installed() -> bool:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def _without_own_limits() -> Iterator[None]:
    """Processes started in the block do not inherit the render process's address-space and
    CPU caps (a render's CPU cap would end the browser a few seconds into its life)."""
    kept = {limit: resource.getrlimit(limit) for limit in (resource.RLIMIT_AS, resource.RLIMIT_CPU)}
    for limit, (_, hard) in kept.items():
        resource.setrlimit(limit, (hard, hard))
    try:
        yield
    finally:
        for limit, values in kept.items():
            resource.setrlimit(limit, values)


def _resident() -> int:
    """The resident memory of this render process's children (the driver and the browser)."""
    return processes.resident_bytes(processes.descendants(os.getpid()))


class _MemoryWatch:
    """While the block runs, kills the render process's children once their resident memory
    together passes ``limit_bytes``; ``tripped`` then says so."""

    def __init__(self, limit_bytes: int) -> None:
        self._limit_bytes = limit_bytes
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="chromium-memory", daemon=True)
        self.tripped = False

    def __enter__(self) -> _MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._done.wait(WATCH_SECONDS):
            children = processes.descendants(os.getpid())
            if processes.resident_bytes(children) > self._limit_bytes:
                self.tripped = True
                processes.kill_all(children)
                return
