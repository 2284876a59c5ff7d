"""The fidelity benchmark end to end on a few templates (Chromium's print as the reference, the
service's renderer for the engines): the harness works, not what it measures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from benchmarks.fidelity import reference
from benchmarks.fidelity.__main__ import templates
from benchmarks.fidelity.engines import service_engines
from benchmarks.fidelity.score import score, words
from connector.errors import PdfConversionFailed

from ..helpers import run_benchmark

SUBSET = ("sparksuite-invoice", "mailgun-billing-ja")

pytestmark = pytest.mark.skipif(
    not reference.CHROMIUM.exists() and not os.environ.get("CI"),
    reason="Chromium is not installed: `apt-get install -y chromium` (CI does)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with reference.chromium() as browser:
        yield browser


def test_chromiums_print_scores_1_against_itself(browser) -> None:
    for html in templates(SUBSET).values():
        first, again = (words(reference.print_pdf(browser, html)) for _ in range(2))

        assert first and score(first, again) == 1.0


def test_japanese_text_is_scored_character_by_character(browser) -> None:
    printed = words(
        reference.print_pdf(browser, templates(["mailgun-billing-ja"])["mailgun-billing-ja"])
    )

    assert {"請", "求", "書"} <= {word.text for word in printed}


def test_every_template_converts_with_the_default_engine_or_is_refused_clearly() -> None:
    converted = []
    with service_engines() as engines:
        for name, html in templates().items():
            try:
                pdf = engines.convert("xhtml2pdf", html)
            except PdfConversionFailed as refused:
                assert "Check the template's markup and CSS" in refused.message
                continue
            assert pdf.startswith(b"%PDF-")
            converted.append(name)
    # The embedded default's strength: classic table layouts.
    assert "sparksuite-invoice" in converted


def test_the_benchmark_prints_its_table(browser) -> None:
    run = run_benchmark("benchmarks.fidelity", "--rounds", "1", "--only", ",".join(SUBSET))

    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| template | xhtml2pdf: score · time per page")
    assert [row.split(" | ")[0] for row in rows[1:]] == [f"| {name}" for name in sorted(SUBSET)] + [
        "| **average**"
    ]
