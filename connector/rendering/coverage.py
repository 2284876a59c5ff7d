"""Which characters an engine's fonts can draw, and the scripts of those they cannot: a render
that would print boxes says so (``X-Render-Warning``, a document's ``missing_scripts``). So does
one whose engine cannot shape text (xhtml2pdf): scripts written right to left or built of letters
and marks that a shaper places (:func:`unshaped_scripts`) come out wrong even with the glyphs.

Coverage comes from the fonts an engine actually uses: the cmaps of the bundled fonts for
xhtml2pdf (it reads no other), fontconfig's view of the system's fonts for WeasyPrint and
Chromium (which fall back through every installed font, glyph by glyph). fontTools is imported
only when needed: every megabyte a render process loads is one less for its renders."""

from __future__ import annotations

import bisect
import subprocess
import unicodedata
from collections.abc import Iterable
from pathlib import Path

WARNING_HEADER = "X-Render-Warning"


def missing_scripts_warning(scripts: Iterable[str]) -> str:
    """The X-Render-Warning of a render that printed boxes (scripts' names are plain ASCII)."""
    return (
        f"missing-scripts: {', '.join(scripts)}: the engine cannot print these correctly (its "
        "fonts lack the characters, which print as boxes, or it has no text shaping or "
        "right-to-left ordering); try the weasyprint or chromium engine"
    )


# Characters no font needs to draw: spaces, controls, and format marks (bidi, joiners).
_NOT_DRAWN = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Cs"})
_RIGHT_TO_LEFT = frozenset({"R", "AL"})  # Unicode bidi classes: Hebrew, Arabic letters, …
_MARKS = frozenset({"Mn", "Mc"})
# Scripts of marks that apply to any script (accents U+0300…): placed without shaping.
_ANY_SCRIPT = frozenset({"Zinh", "Zyyy"})


def unshaped_scripts(text: str) -> list[str]:
    """The scripts (Unicode's names) in ``text`` that an engine without text shaping and bidi
    ordering prints wrongly even with every glyph: those of right-to-left letters (bidi class R
    or AL: Arabic, Hebrew, Syriac, Thaana, N'Ko, …), which come out unjoined and reversed, and
    those of a script's own combining marks (vowel signs, viramas: Devanagari, Bengali, Tamil,
    Thai, Khmer, Myanmar, …), which need a shaper to place and to form conjuncts. Sorted."""
    from fontTools import unicodedata as scripts

    found = set()
    for character in set(text):
        if unicodedata.bidirectional(character) in _RIGHT_TO_LEFT:
            found.add(scripts.script(character))
        elif unicodedata.category(character) in _MARKS:
            script = scripts.script(character)
            if script not in _ANY_SCRIPT:
                found.add(script)
    return sorted(scripts.script_name(script) for script in found)


class FontCoverage:
    """The code points a set of fonts covers, as sorted, merged ranges."""

    def __init__(self, ranges: Iterable[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for start, end in sorted(ranges):
            if merged and start <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self._starts = [start for start, _ in merged]
        self._ends = [end for _, end in merged]

    @classmethod
    def of_font_files(cls, paths: Iterable[Path]) -> FontCoverage:
        from fontTools.ttLib import TTFont

        ranges: list[tuple[int, int]] = []
        for path in paths:
            with TTFont(path, lazy=True) as font:
                ranges.extend((code, code) for code in font.getBestCmap())
        return cls(ranges)

    @classmethod
    def of_fontconfig(cls) -> FontCoverage:
        """Every font fontconfig knows (as ``FONTCONFIG_FILE`` configures it), together."""
        listing = subprocess.run(
            ["fc-list", "--format", "%{charset}\\n"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        return cls(_charset_ranges(listing.split()))

    def covers(self, character: str) -> bool:
        code = ord(character)
        index = bisect.bisect_right(self._starts, code) - 1
        return index >= 0 and code <= self._ends[index]

    def missing_scripts(self, text: str) -> list[str]:
        """The scripts (Unicode's names: "Han", "Thai", …) of the characters in ``text`` that
        these fonts cannot draw, sorted."""
        missing = {
            character
            for character in set(text)
            if unicodedata.category(character) not in _NOT_DRAWN and not self.covers(character)
        }
        if not missing:
            return []
        from fontTools import unicodedata as scripts

        return sorted({scripts.script_name(scripts.script(character)) for character in missing})


def _charset_ranges(items: Iterable[str]) -> Iterable[tuple[int, int]]:
    """fontconfig's charset notation: hexadecimal code points and ranges, ``20-7e a0``."""
    for item in items:
        start, _, end = item.partition("-")
        yield int(start, 16), int(end or start, 16)
