"""The layout score: the share of the reference's words that another PDF prints in the same
place (docs/benchmarks.md, "Layout fidelity").

Words are read with their positions from both PDFs, in the order their text is written (which
follows the document for the engines measured), and paired by a sequence alignment on their text
(case aside). A reference word counts when its partner is on the same page and its centre,
relative to that page's content box, is within ``TOLERANCE`` of the reference's in x and in y.
The content box is found from the words that the two PDFs share on that page (text that only one
engine prints, a running footer, does not count): it starts at their top left, so margins that
differ do not count; across, it is as wide as they reach, as text set to the page's width follows
the width the engine's margins leave; down, distances are fractions of the page's height (3%:
25 pt on A4), as the text of a short document does not reach the foot of its content box.
"""

from __future__ import annotations

import difflib
import io
import logging
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pdfplumber

TOLERANCE = 0.03

# pdfminer warns about each font without a bounding box (xhtml2pdf writes such): not ours to fix.
logging.getLogger("pdfminer").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Word:
    """A word's text, its page (from 0), its box on the page in points from the top left, and
    the page's size."""

    text: str
    page: int
    x0: float
    top: float
    x1: float
    bottom: float
    page_width: float
    page_height: float


@dataclass(frozen=True)
class _ContentBox:
    left: float
    top: float
    width: float

    @classmethod
    def around(cls, words: Iterable[Word]) -> _ContentBox:
        words = list(words)
        left = min(w.x0 for w in words)
        # One word's width at least: a page with a single word still places it.
        return cls(left, min(w.top for w in words), max(max(w.x1 for w in words) - left, 1.0))

    def centre(self, word: Word) -> tuple[float, float]:
        return (
            ((word.x0 + word.x1) / 2 - self.left) / self.width,
            ((word.top + word.bottom) / 2 - self.top) / word.page_height,
        )


def words(pdf: bytes) -> list[Word]:
    """The words of ``pdf`` in the order they are written. CJK text has no spaces between words:
    each of its characters counts as a word, so that a line of it weighs as much as a line of
    Latin. Text is compared in NFKC form (Arabic presentation forms are their letters)."""
    found: list[Word] = []
    with pdfplumber.open(io.BytesIO(pdf)) as document:
        for number, page in enumerate(document.pages):
            extracted = page.extract_words(use_text_flow=True, return_chars=True)
            found.extend(
                Word(text, number, *box, float(page.width), float(page.height))
                for text, *box in _split(extracted)
            )
    return found


def score(reference: Sequence[Word], candidate: Sequence[Word]) -> float:
    """The share of ``reference``'s words that ``candidate`` prints in the same place: 1.0 for the
    same layout; a word missing from ``candidate`` counts as misplaced."""
    if not reference:
        return 1.0
    matcher = difflib.SequenceMatcher(
        None,
        [word.text.casefold() for word in reference],
        [word.text.casefold() for word in candidate],
        autojunk=False,
    )
    pairs = [
        (reference[i + k], candidate[j + k])
        for i, j, size in matcher.get_matching_blocks()
        for k in range(size)
    ]
    reference_boxes = _boxes_by_page(ours for ours, _ in pairs)
    candidate_boxes = _boxes_by_page(theirs for _, theirs in pairs)
    placed = 0
    for ours, theirs in pairs:
        if ours.page != theirs.page:
            continue
        x, y = reference_boxes[ours.page].centre(ours)
        their_x, their_y = candidate_boxes[theirs.page].centre(theirs)
        placed += abs(x - their_x) <= TOLERANCE and abs(y - their_y) <= TOLERANCE
    return placed / len(reference)


def _boxes_by_page(words: Iterable[Word]) -> dict[int, _ContentBox]:
    pages: dict[int, list[Word]] = {}
    for word in words:
        pages.setdefault(word.page, []).append(word)
    return {page: _ContentBox.around(on_page) for page, on_page in pages.items()}


def _split(extracted: list[dict[str, Any]]) -> Iterator[tuple[str, float, float, float, float]]:
    """(text, x0, top, x1, bottom) per word; CJK characters one by one."""
    for word in extracted:
        text = unicodedata.normalize("NFKC", word["text"]).strip()
        if not text:
            continue
        if any(_is_cjk(character) for character in text):
            for char in word["chars"]:
                character = unicodedata.normalize("NFKC", char["text"]).strip()
                if character:
                    yield character, char["x0"], char["top"], char["x1"], char["bottom"]
        else:
            yield text, word["x0"], word["top"], word["x1"], word["bottom"]


def _is_cjk(character: str) -> bool:
    point = ord(character)
    return (
        0x3000 <= point <= 0x9FFF  # CJK punctuation, kana, unified ideographs
        or 0xAC00 <= point <= 0xD7AF  # Hangul syllables
        or 0xF900 <= point <= 0xFAFF  # compatibility ideographs
        or 0xFF00 <= point <= 0xFFEF  # full-width forms
    )
