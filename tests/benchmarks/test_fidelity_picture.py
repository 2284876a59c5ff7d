"""The README's picture of the three engines: the file it shows is the one
``benchmarks/fidelity/picture.py`` draws, of the template the README names, each engine's page
really rendered (not the grey panel of an engine that is not installed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from benchmarks.fidelity import picture
from benchmarks.fidelity.engines import ENGINES
from benchmarks.fidelity.reference import CHROMIUM

from ..helpers import REPOSITORY, run_benchmark

PICTURE = REPOSITORY / "docs" / "screenshots" / "engines.png"


def rendered_panels(path: Path) -> list[str]:
    """The engines whose panel is a white page, left to right."""
    image = Image.open(path).convert("L")
    panels = []
    for index, engine in enumerate(ENGINES):
        left = index * (picture.WIDTH + picture.GAP)
        panel = image.crop(
            (left + 2, picture.CAPTION + 2, left + picture.WIDTH - 2, image.height - 2)
        )
        white = sum(count for value, count in enumerate(panel.histogram()) if value >= 250)
        if white > panel.width * panel.height // 2:
            panels.append(engine)
    return panels


def test_the_readme_shows_the_three_engines_on_the_template_it_names() -> None:
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    attribution = (REPOSITORY / "benchmarks/fidelity/corpus/ATTRIBUTION.md").read_text(
        encoding="utf-8"
    )

    assert "](docs/screenshots/engines.png)" in readme
    assert ENGINES == ("xhtml2pdf", "weasyprint", "chromium")
    assert "WeasyPrint's" in readme and "CourtBouillon/weasyprint-samples" in attribution
    assert f"`{picture.TEMPLATE}.html` | invoice" in attribution
    assert PICTURE.stat().st_size < 300 * 1024
    assert Image.open(PICTURE).width == len(ENGINES) * (picture.WIDTH + picture.GAP) - picture.GAP
    assert rendered_panels(PICTURE) == list(ENGINES)


@pytest.mark.chromium
@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed")
def test_the_script_draws_each_engines_page(tmp_path: Path) -> None:
    out = tmp_path / "engines.png"
    run = run_benchmark("benchmarks.fidelity.picture", "--out", str(out))

    assert run.returncode == 0, run.stderr
    assert rendered_panels(out) == list(ENGINES)
