"""What runs inside a render process, and nowhere else: Liquid, HTML to text and HTML to PDF
with each engine (:mod:`.pdf`, :mod:`.weasy`, :mod:`.chrome`).

A render process lives under limits the kernel enforces: an address-space cap (``RLIMIT_AS``)
set once when it starts, and a CPU-time cap (``RLIMIT_CPU``) renewed for each task. The web
worker adds the wall-clock limit by killing the process (:mod:`.pool`). Chromium, which cannot
live under an address-space cap, is bounded by its own watch (:mod:`.chrome`). Data crosses as
pickled bytes, unpickled here, so that data the web worker cannot pickle is refused there, in
its own thread, and never reaches the pool's machinery.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import math
import os
import pickle
import resource
import signal
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ..errors import EngineUnavailable, TemplateRenderError
from . import Format, RenderedFile, RenderJob, liquid, weasy
from .chrome import ChromiumPrinter
from .coverage import FontCoverage, unshaped_scripts
from .engines import DEFAULT_CHROMIUM, Engine
from .page import PageSetup
from .pdf import FONT_FILES, FONTS, html_to_pdf
from .text import html_to_text

_T = TypeVar("_T")
M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
# Render processes give way to the web workers: a machine busy rendering still answers at once.
NICENESS = 10
log = logging.getLogger(__name__)
_chromium = ChromiumPrinter(DEFAULT_CHROMIUM, memory_bytes=512 * 2**20)


def start_process(
    memory_bytes: int, chromium_path: Path = DEFAULT_CHROMIUM, warm: Engine | None = None
) -> None:
    """Runs once in each new render process, before its first task."""
    global _chromium
    one_malloc_arena()
    # The soft limit only: Chromium's processes are started without it (chrome.py).
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, hard))
    _chromium = ChromiumPrinter(chromium_path, memory_bytes)
    try:
        if warm is Engine.CHROMIUM:
            _chromium.start()
        elif warm is Engine.WEASYPRINT:
            weasy.html_to_pdf("<p></p>", None)  # imports it and loads the system's fonts (1 s)
    except EngineUnavailable as error:  # said again to each render that asks for it
        log.warning("%s", error.message)
    os.nice(NICENESS)
    # Ctrl-C in a terminal reaches the whole process group: the web worker decides; a render
    # process ends when its web worker does.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def one_malloc_arena() -> None:
    """glibc gives each thread that allocates its own malloc arena, reserving 64 MB of address
    space each: unused, but counted against ``RLIMIT_AS``. A render process has a few threads
    (Playwright's, Chromium's memory watch), so a WeasyPrint render of CJK text after other
    renders met the 512 MB cap; one arena keeps the address space to what renders use. Where
    the C library is not glibc, nothing to do."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if hasattr(libc, "mallopt"):
        libc.mallopt(M_ARENA_MAX, 1)


def within_cpu(seconds: float, work: Callable[[], _T]) -> _T:
    """``work()`` with ``seconds`` more CPU time at most: past it the kernel sends SIGXCPU, which
    ends the process."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = used.ru_utime + used.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (math.ceil(spent + seconds), hard))
    return work()


def _with_line_breaks(value: Any) -> Any:
    """Data whose strings show their line breaks in HTML, as TemplateTo's option does."""
    if isinstance(value, str):
        return value.replace("\r\n", "\n").replace("\n", "<br>\n")
    if isinstance(value, Mapping):
        return {key: _with_line_breaks(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_line_breaks(item) for item in value]
    return value


def _data(job: RenderJob, html: bool) -> Mapping[str, Any]:
    data = pickle.loads(job.pickled_data)
    if not (html and job.preserve_line_breaks):
        return data
    try:
        return _with_line_breaks(data)
    except RecursionError:
        raise TemplateRenderError("The data is nested too deeply.") from None


def _html(job: RenderJob) -> str:
    return liquid.render(job.body, _data(job, html=True), strict=job.strict)


def render_text(job: RenderJob, cpu_seconds: float) -> bytes:
    """A TXT file: the text body rendered, or else the rendered HTML's text."""

    def work() -> bytes:
        if job.text_body is None:
            text = html_to_text(_html(job))
        else:
            text = liquid.render(job.text_body, _data(job, html=False), strict=job.strict)
        # "replace": a lone surrogate (which a filter could make) has no UTF-8 form.
        return text.encode("utf-8", "replace")

    return within_cpu(cpu_seconds, work)


def render_html(job: RenderJob, cpu_seconds: float) -> str:
    """The template's HTML with the data filled in (for a PDF converted elsewhere)."""
    return within_cpu(cpu_seconds, lambda: _html(job))


def render_pdf(job: RenderJob, cpu_seconds: float) -> RenderedFile:
    return within_cpu(cpu_seconds, lambda: _pdf(_html(job), job.engine, job.page))


def convert_html(
    html: str, engine: Engine, page: PageSetup | None, cpu_seconds: float
) -> RenderedFile:
    return within_cpu(cpu_seconds, lambda: _pdf(html, engine, page))


def available_engines(cpu_seconds: float) -> list[str]:
    """The engines this render process can use (Chromium's presence, not a start)."""
    usable = {
        Engine.XHTML2PDF: True,
        Engine.WEASYPRINT: weasy.available(),
        Engine.CHROMIUM: _chromium.available(),
    }
    return [engine.value for engine, ok in usable.items() if ok]


def outgrown() -> bool:
    """Whether this render process should be replaced after its task: Chromium kept memory."""
    return _chromium.outgrown()


def _pdf(html: str, engine: Engine, page: PageSetup | None) -> RenderedFile:
    if engine is Engine.WEASYPRINT:
        content = weasy.html_to_pdf(html, page)
    elif engine is Engine.CHROMIUM:
        content = _chromium.html_to_pdf(html, page)
    else:
        content = html_to_pdf(html, page)
    return RenderedFile(content, Format.PDF, tuple(_missing_scripts(html, engine)))


def _missing_scripts(html: str, engine: Engine) -> list[str]:
    """The scripts the engine cannot print correctly: those its fonts lack, and for xhtml2pdf,
    which has no text shaping or bidi ordering, those that need them."""
    if html.isascii() and "&" not in html:  # ASCII text, which every engine's fonts draw:
        return []  # no second parse of the HTML (an entity may stand for any character)
    text = html_to_text(html)
    coverage = _bundled_fonts() if engine is Engine.XHTML2PDF else _system_fonts()
    missing = set(coverage.missing_scripts(text)) if coverage is not None else set()
    if engine is Engine.XHTML2PDF:
        missing.update(unshaped_scripts(text))
    return sorted(missing)


@functools.cache
def _bundled_fonts() -> FontCoverage:
    """Read by a process's first PDF (0.1 s; in the fork server, every process would carry its
    few megabytes, TXT renders too)."""
    return FontCoverage.of_font_files(FONT_FILES)


@functools.cache
def _system_fonts() -> FontCoverage | None:
    """Read by a process's first WeasyPrint or Chromium render (0.4 s, 10 MB)."""
    try:
        return FontCoverage.of_fontconfig()
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("fontconfig's fc-list failed (%s): no warnings of missing scripts", error)
        return None


def template_variables(sources: tuple[str, ...], cpu_seconds: float) -> list[str]:
    """The variables the sources read, sorted; raises ``TemplateSyntaxError`` for the first
    source that does not parse."""

    def work() -> list[str]:
        return sorted({name for source in sources for name in liquid.variables(source)})

    return within_cpu(cpu_seconds, work)


# Only render processes' fork server imports this module, once for every process it forks: one
# conversion here loads what xhtml2pdf loads lazily on its first document (0.3 s). WeasyPrint and
# Chromium see the bundled fonts and the system's.
os.environ["FONTCONFIG_FILE"] = str(FONTS / "fonts.conf")
html_to_pdf("<p></p>")
