"""Scripts an engine without text shaping or bidi ordering (xhtml2pdf) prints wrongly, found from
Unicode's data (bidi class, combining marks, script) rather than a list of code points."""

from __future__ import annotations

import pytest

from connector.rendering.coverage import missing_scripts_warning, unshaped_scripts


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("مرحبا بالعالم", "Arabic"),
        ("שלום עולם", "Hebrew"),
        ("ܫܠܡܐ", "Syriac"),
        ("ދިވެހި", "Thaana"),
        ("ߒߞߏ", "Nko"),
        ("नमस्ते दुनिया", "Devanagari"),
        ("নমস্কার", "Bengali"),
        ("வணக்கம்", "Tamil"),
        ("สวัสดีชาวโลก", "Thai"),
        ("សួស្តី", "Khmer"),
        ("မင်္ဂလာပါ", "Myanmar"),
    ],
)
def test_right_to_left_and_shaped_scripts_are_named(text: str, script: str) -> None:
    assert unshaped_scripts(f"Total: {text} 12.50") == [script]


def test_scripts_printed_letter_by_letter_are_not_named() -> None:
    # Accents (precomposed or combining), Greek, Cyrillic, CJK, digits and symbols need no shaper.
    text = "Łódź Ελλάδα Москва e\u0301 你好 こんにちは 안녕하세요 € 1,234.50 \u2013 ✓"

    assert unshaped_scripts(text) == []


def test_the_warning_names_the_scripts_and_the_engines_that_print_them() -> None:
    warning = missing_scripts_warning(["Arabic", "Han"])

    assert warning.startswith("missing-scripts: Arabic, Han: ")
    assert "right-to-left" in warning and "weasyprint or chromium" in warning
    assert warning.isascii()
