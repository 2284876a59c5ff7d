"""The three PDF engines under one contract: page setup, no files or network, the same time
limit, memory bounded (Chromium's by its own watch), every script or an honest warning."""

from __future__ import annotations

import io
import os
import socket
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pdfplumber
import pytest
from pypdf import PdfReader

from connector.errors import EngineUnavailable, RenderLimitExceeded
from connector.rendering import Format, Renderer, RenderLimits, TemplateSource, processes
from connector.rendering.engines import Engine
from connector.rendering.page import Orientation, PageSetup, PaperSize
from connector.rendering.pool import RenderPool
from connector.rendering.slots import RenderSlots

PDF_SECONDS = 5.0
ENGINES = [
    Engine.XHTML2PDF,
    Engine.WEASYPRINT,
    pytest.param(Engine.CHROMIUM, marks=[pytest.mark.chromium, pytest.mark.slow]),
]
# One line of each script the issue measured (Arabic is shaped and right to left).
SCRIPTS = {
    "Arabic": "مرحبا بالعالم",
    "Han": "你好世界",
    "Hiragana": "こんにちは",
    "Hangul": "안녕하세요",
    "Devanagari": "नमस्ते दुनिया",
    "Thai": "สวัสดีชาวโลก",
}
# Sentences in logical order (as typed): printed right to left, the first word is rightmost.
RIGHT_TO_LEFT = {
    "ar": "مرحبا بكم في متجرنا",
    "he": "שלום וברוכים הבאים לחנות",
}
TWO_PAGES = '<p>one</p><div style="page-break-before: always">two</div>'


@pytest.fixture
def renderer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Renderer]:
    """One render process, readying the test's engine as it starts, as where that engine is the
    default (memory is not what these tests are about)."""
    engine = getattr(request.node, "callspec", None) and request.node.callspec.params.get("engine")
    with one_process_renderer(tmp_path, engine or None, PDF_SECONDS) as renderer:
        yield renderer


@contextmanager
def one_process_renderer(
    tmp_path: Path, engine: Engine | None, pdf_seconds: float
) -> Iterator[Renderer]:
    renderer = Renderer(
        RenderPool(processes=1, memory_mb=2048, warm=engine),
        RenderSlots(tmp_path / "slots", capacity=1, queue=4),
        RenderLimits(txt_seconds=5, pdf_seconds=pdf_seconds),
    )
    renderer.start()
    try:
        yield renderer
    finally:
        renderer.close()


def pdf(renderer: Renderer, html: str, engine: Engine, page: PageSetup | None = None):
    rendered = renderer.html_to_pdf("acc_a", html, engine=engine, page=page)
    return rendered, PdfReader(io.BytesIO(rendered.content))


def size(reader: PdfReader, number: int = 0) -> tuple[int, int]:
    """A page's width and height in points, rounded (Chromium's differ by under a point)."""
    box = reader.pages[number].mediabox
    return round(float(box.width)), round(float(box.height))


def fonts(reader: PdfReader) -> set[str]:
    """The fonts' names (Chromium embeds CFF fonts as Type 3 fonts, named in their descriptor)."""
    names = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            name = font.get("/BaseFont") or font["/FontDescriptor"]["/FontFamily"]
            names.add(str(name).split("+")[-1])
    return names


@pytest.mark.parametrize("engine", ENGINES)
def test_page_setup_is_honoured_by_every_engine(renderer, engine) -> None:
    letter = PageSetup(
        size=PaperSize.LETTER, orientation=Orientation.LANDSCAPE, margin_mm=15, page_numbers=True
    )

    _, default = pdf(renderer, "<p>x</p>", engine)
    _, a4 = pdf(renderer, "<p>x</p>", engine, PageSetup())
    _, numbered = pdf(renderer, TWO_PAGES, engine, letter)
    own = "<style>@page { size: 100mm 150mm; }</style><p>x</p>"
    _, from_css = pdf(renderer, own, engine, PageSetup(size=PaperSize.CSS, page_numbers=True))

    assert {size(default), size(a4)} <= {(595, 842), (596, 843)}  # A4, as each engine rounds
    assert [size(numbered, n) for n in (0, 1)] == [(792, 612)] * 2  # Letter, landscape
    assert "Page 1 of 2" in numbered.pages[0].extract_text()
    assert "Page 2 of 2" in numbered.pages[1].extract_text()
    assert size(from_css) in {(283, 425), (284, 425)}  # the template's 100 x 150 mm
    assert "Page 1 of 1" in from_css.pages[0].extract_text()


class Listener:
    """A loopback port that counts the connections made to it."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_no_engine_reads_local_files_or_the_network(renderer, engine) -> None:
    listener = Listener()
    url = f"http://127.0.0.1:{listener.port}"
    secret = Path("/etc/hostname").read_text().strip() or "localhost"
    dot = (
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQ"
        "DwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    )
    html = (
        f'<html><head><link rel="stylesheet" href="{url}/a.css">'
        f'<style>@import url("{url}/b.css"); @font-face {{ font-family: F; src: url("{url}/f");'
        " } p { font-family: F; }</style></head><body><p>before</p>"
        f'<img src="{url}/c.png"><img src="file:///etc/hostname"><img src="/etc/hostname">'
        f'<iframe src="file:///etc/hostname"></iframe><object data="file:///etc/hostname"></object>'
        f'<img src="{dot}" width="40" height="40"><p>after</p></body></html>'
    )

    try:
        _, reader = pdf(renderer, html, engine)
    finally:
        listener.socket.close()

    text = reader.pages[0].extract_text()
    assert "before" in text and "after" in text
    assert secret not in text
    assert listener.connections == 0
    # The data: URI, which every engine may read (Chromium draws its broken-image icon too).
    assert (1, 1) in {image.image.size for image in reader.pages[0].images}


@pytest.mark.parametrize("engine", [e for e in ENGINES if e != Engine.XHTML2PDF])
def test_every_script_is_drawn_by_weasyprint_and_chromium(renderer, engine) -> None:
    html = "".join(f"<p>{line}</p>" for line in SCRIPTS.values())

    rendered, reader = pdf(renderer, html, engine)

    assert rendered.missing_scripts == ()
    used = fonts(reader)
    # Debian's Noto families (fonts-noto-core, fonts-noto-cjk) draw what DejaVu cannot (it has
    # Arabic, which HarfBuzz shapes with its OpenType tables).
    for family in ("CJK", "Devanagari", "Thai"):
        assert any(family in name for name in used), (family, used)


@pytest.mark.parametrize("engine", ENGINES)
def test_characters_no_font_can_draw_are_named_not_silently_boxed(renderer, engine) -> None:
    kawi = "\U00011f04\U00011f05"  # Unicode 15's Kawi: in no font installed here

    rendered, _ = pdf(renderer, f"<p>Hello {kawi}</p>", engine)

    assert "Kawi" in rendered.missing_scripts


@pytest.mark.parametrize("engine", [e for e in ENGINES if e != Engine.XHTML2PDF])
@pytest.mark.parametrize(
    ("generic", "face"),
    [
        ("serif", "LiberationSerif"),
        ("sans-serif", "LiberationSans"),
        ("'Source Sans Pro'", "LiberationSerif"),  # not installed: the browser's standard font
    ],
)
def test_generic_families_are_the_browsers_faces_with_either_engine(
    renderer, engine, generic, face
) -> None:
    _, reader = pdf(renderer, f'<p style="font-family: {generic}">Dear customer,</p>', engine)

    # Chromium's serif and sans-serif are its Times New Roman and Arial: Liberation's faces on
    # Debian; WeasyPrint's follow (fonts.conf), not fontconfig's own first faces (Noto's).
    assert {name.replace("-", "") for name in fonts(reader)} == {face}


def left_edges(content: bytes, sentence: str) -> list[float]:
    """Where each word of ``sentence`` starts on the first page, in the sentence's order. A PDF
    keeps right-to-left text in visual order: a word may read back to front."""
    with pdfplumber.open(io.BytesIO(content)) as document:
        printed = {
            unicodedata.normalize("NFKC", word["text"]): word["x0"]
            for word in document.pages[0].extract_words()
        }
    edges = []
    for word in sentence.split():
        found = [printed[text] for text in (word, word[::-1]) if text in printed]
        assert found, (word, printed)
        edges.append(found[0])
    return edges


@pytest.mark.parametrize("engine", [e for e in ENGINES if e != Engine.XHTML2PDF])
@pytest.mark.parametrize("language", sorted(RIGHT_TO_LEFT))
def test_arabic_and_hebrew_are_printed_right_to_left(renderer, engine, language) -> None:
    sentence = RIGHT_TO_LEFT[language]

    rendered, _ = pdf(renderer, f'<p lang="{language}">{sentence}</p>', engine)

    edges = left_edges(rendered.content, sentence)
    # The first word typed is the rightmost, each next one further left.
    assert edges == sorted(edges, reverse=True) and len(set(edges)) == len(edges)


def test_xhtml2pdf_names_the_scripts_its_font_lacks_or_it_cannot_shape(renderer) -> None:
    html = "".join(f"<p>{line}</p>" for line in SCRIPTS.values()) + "<p>Łódź Ελλάδα Москва</p>"

    rendered, _ = pdf(renderer, html, Engine.XHTML2PDF)

    # DejaVu Sans has Latin, Greek, Cyrillic and Arabic letters, but xhtml2pdf prints Arabic
    # unjoined and left to right; Han, Hangul, Hiragana as boxes; Devanagari and Thai both.
    assert rendered.missing_scripts == (
        "Arabic",
        "Devanagari",
        "Han",
        "Hangul",
        "Hiragana",
        "Thai",
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_is_stopped_at_the_time_limit_and_the_pool_renders_on(
    tmp_path: Path, engine
) -> None:
    # A second is far less than any engine takes for 15,000 rows, on the fastest machine.
    rows = "{% for i in (1..15000) %}<tr><td>{{ i }}</td><td>cell {{ i }}</td></tr>{% endfor %}"
    table = TemplateSource("tpl_table", "Table", body=f"<table>{rows}</table>", engine=engine)
    with one_process_renderer(tmp_path, engine, pdf_seconds=1.0) as renderer:
        browser = set(browser_processes())
        assert bool(browser) == (engine is Engine.CHROMIUM)

        with pytest.raises(RenderLimitExceeded) as stopped:
            renderer.render("acc_a", table, {}, Format.PDF)
        after, _ = pdf(renderer, "<p>after</p>", engine)
        now = set(browser_processes())

    assert stopped.value.details == {"limit": "time", "seconds": 1.0}
    assert after.content.startswith(b"%PDF")
    assert browser & now == set()  # Chromium's went with its process


def browser_processes() -> list[int]:
    """Chromium's and Playwright's driver's processes started by this test's render processes."""
    found = []
    for pid in processes.descendants(os.getpid()):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z" and (b"chromium" in command or b"playwright" in command):
            found.append(pid)
    return found


@pytest.mark.chromium
@pytest.mark.slow
def test_chromium_growing_past_the_memory_limit_is_stopped_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    # No JavaScript: the page grows the browser's memory with elements, 100,000 of them.
    renderer = Renderer(
        RenderPool(processes=1, memory_mb=300, warm=Engine.CHROMIUM),
        RenderSlots(tmp_path, capacity=1, queue=0),
        RenderLimits(txt_seconds=5, pdf_seconds=120),  # time is not what this is about
    )
    cells = "{% for i in (1..100000) %}<div style='border: 1px solid'>{{ i }}</div>{% endfor %}"
    growing = TemplateSource("tpl_big", "Big", body=cells, engine=Engine.CHROMIUM)
    others = set(browser_processes())  # any renderers of earlier tests still closing
    try:
        renderer.start()
        browser = set(browser_processes()) - others
        with pytest.raises(RenderLimitExceeded) as stopped:
            renderer.render("acc_a", growing, {}, Format.PDF)
        left = browser & set(browser_processes())
        after, _ = pdf(renderer, "<p>after</p>", Engine.CHROMIUM)
    finally:
        renderer.close()

    assert stopped.value.details == {"limit": "memory", "megabytes": 300}
    assert browser and left == set()  # the browser that grew is gone, driver and all
    assert after.content.startswith(b"%PDF")  # a new process, a new browser


def test_an_engine_not_installed_is_a_422_naming_what_to_install(tmp_path: Path) -> None:
    renderer = Renderer(
        RenderPool(processes=1, memory_mb=512, chromium_path=tmp_path / "no-chromium"),
        RenderSlots(tmp_path / "slots", capacity=1, queue=0),
        RenderLimits(),
    )
    try:
        with pytest.raises(EngineUnavailable) as refused:
            renderer.html_to_pdf("acc_a", "<p>x</p>", engine=Engine.CHROMIUM)
        engines = renderer.engines()
    finally:
        renderer.close()

    assert refused.value.status == 422 and refused.value.code == "engine_unavailable"
    assert "apt-get install chromium" in refused.value.message
    assert refused.value.details == {"engine": "chromium"}
    assert "chromium" not in engines["available"]
