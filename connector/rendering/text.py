"""Plain text from rendered HTML, for TXT documents of templates that have no text body.

libxml2's HTML parser (through lxml) reads any markup in linear time and repairs what is broken
as browsers do; Python's ``html.parser`` is quadratic on runs of ``<!--`` and fails on some
malformed declarations.
"""

from __future__ import annotations

import re

import lxml.html
from lxml import etree

_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "footer",
        "h1", "h2", "h3", "h4", "h5", "h6", "header", "li", "main", "nav", "ol", "p",
        "pre", "section", "table", "tbody", "thead", "tfoot", "tr", "ul",
    }
)  # fmt: skip
_LINE_BREAKS = frozenset({"br", "hr"})  # empty elements: one line break, not two
_CELLS = frozenset({"td", "th"})
_SKIPPED = frozenset({"head", "script", "style", "title", "template"})
_PARSER = lxml.html.HTMLParser(
    encoding="utf-8",
    recover=True,
    no_network=True,
    huge_tree=True,
    remove_comments=True,
    remove_pis=True,
)
_SPACES = re.compile(r"\s+")


def html_to_text(html: str) -> str:
    """The text a reader sees: one line per block element, cells separated by tabs."""
    parts: list[str] = []
    if html.strip():
        try:
            # As UTF-8 bytes ("replace": a lone surrogate would end lxml's reading of a str).
            root = lxml.html.document_fromstring(html.encode("utf-8", "replace"), parser=_PARSER)
        except etree.ParserError:  # nothing but comments or declarations: no text to show
            root = None
        if root is not None:
            _collect(root, parts)
    lines = (line.strip(" \t") for line in "".join(parts).splitlines())
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return text + "\n" if text else ""


def _collect(root: etree._Element, parts: list[str]) -> None:
    # iterwalk, not recursion: a document may nest elements thousands deep.
    skipping = 0
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag
        if event == "start":
            if tag in _SKIPPED:
                skipping += 1
            elif tag in _BLOCKS or tag in _LINE_BREAKS:
                parts.append("\n")
            elif tag in _CELLS:
                parts.append("\t")
            if not skipping and element.text:
                parts.append(_SPACES.sub(" ", element.text))
        else:
            if tag in _SKIPPED:
                skipping -= 1
            elif tag in _BLOCKS:
                parts.append("\n")
            if not skipping and element.tail:
                parts.append(_SPACES.sub(" ", element.tail))
