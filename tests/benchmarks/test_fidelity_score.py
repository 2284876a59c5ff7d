"""The layout score of the fidelity benchmark (benchmarks/fidelity/score.py), on PDFs that
xhtml2pdf prints here: the same layout scores 1.0; words that move, go missing or change page
are misses; margins that differ evenly are not."""

from __future__ import annotations

import pytest

from benchmarks.fidelity.score import score, words
from connector.rendering.pdf import html_to_pdf

# Words at the top corners of the text fix the content box; the paragraph under them is what the
# tests move.
PARAGRAPH = "Seven words that move about the page"


def page(
    paragraph_style: str = "", page_style: str = "margin: 2cm", paragraph: bool = True
) -> bytes:
    body = f'<p style="{paragraph_style}">{PARAGRAPH}</p>' if paragraph else ""
    return html_to_pdf(
        f"<html><head><style>@page {{ {page_style} }}</style></head><body>"
        '<table width="100%"><tr><td>North west</td><td align="right">North east</td></tr></table>'
        '<table width="100%"><tr><td>South west</td><td align="right">South east</td></tr></table>'
        f"{body}"
        "</body></html>"
    )


@pytest.fixture(scope="module")
def reference() -> list:
    return words(page())


def share_without_paragraph(reference: list) -> float:
    moved = len(PARAGRAPH.split())
    return (len(reference) - moved) / len(reference)


def test_the_same_layout_scores_1(reference) -> None:
    assert len(reference) == 8 + len(PARAGRAPH.split())
    assert score(reference, reference) == 1.0
    assert score(reference, words(page())) == 1.0


def test_a_paragraph_moved_right_is_misplaced_and_the_rest_is_not(reference) -> None:
    moved = words(page(paragraph_style="margin-left: 8cm"))

    assert score(reference, moved) == pytest.approx(share_without_paragraph(reference))


def test_missing_words_count_as_misses(reference) -> None:
    without = words(page(paragraph=False))

    assert score(reference, without) == pytest.approx(share_without_paragraph(reference))
    assert score(reference, []) == 0.0


def test_words_printed_on_another_page_are_misplaced(reference) -> None:
    next_page = words(page(paragraph_style="page-break-before: always"))

    assert {word.page for word in next_page} == {0, 1}
    assert score(reference, next_page) == pytest.approx(share_without_paragraph(reference))


def test_margins_that_differ_evenly_do_not_count(reference) -> None:
    shifted = words(page(page_style="margin: 4cm 1cm 0 3cm"))

    assert [w.x0 for w in shifted] != [w.x0 for w in reference]
    assert score(reference, shifted) == 1.0
