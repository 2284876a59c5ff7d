"""The README's picture: one template of the corpus rendered by each of the service's engines,
the first pages side by side (PDFs from the service's renderer, rasterised with PDFium).

    python -m benchmarks.fidelity.picture [--template NAME] [--out docs/screenshots/engines.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pypdfium2
from PIL import Image, ImageDraw, ImageFont

from benchmarks.fidelity.__main__ import templates
from benchmarks.fidelity.engines import ENGINES, service_engines
from connector.rendering.pdf import FONTS

ROOT = Path(__file__).parents[2]
TEMPLATE = "courtbouillon-invoice"  # flexbox, @page margin boxes: where the engines differ
WIDTH = 420  # pixels per page: small enough for the README, large enough to compare layouts
CAPTION = 28
GAP = 12


def first_page(pdf: bytes) -> Image.Image:
    page = pypdfium2.PdfDocument(pdf)[0]
    image = page.render(scale=WIDTH / page.get_width()).to_pil().convert("RGB")
    return image


def placeholder(text: str, height: int) -> Image.Image:
    image = Image.new("RGB", (WIDTH, height), "#eeeeee")
    ImageDraw.Draw(image).text((16, height // 2), text, fill="#555555", font=_font(16))
    return image


def side_by_side(pages: dict[str, Image.Image]) -> Image.Image:
    height = max(image.height for image in pages.values())
    sheet = Image.new("RGB", (len(pages) * (WIDTH + GAP) - GAP, height + CAPTION), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (engine, image) in enumerate(pages.items()):
        left = index * (WIDTH + GAP)
        draw.text((left + 4, 4), engine, fill="black", font=_font(18))
        sheet.paste(image, (left, CAPTION))
        draw.rectangle(
            (left, CAPTION, left + WIDTH - 1, CAPTION + image.height - 1), outline="#999999"
        )
    return sheet


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS / "DejaVuSans.ttf"), size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default=TEMPLATE)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots" / "engines.png")
    arguments = parser.parse_args()
    html = templates([arguments.template])[arguments.template]
    pages: dict[str, Image.Image] = {}
    with service_engines() as engines:
        missing = engines.unavailable()
        for engine in ENGINES:
            if engine in missing:
                continue
            pages[engine] = first_page(engines.convert(engine, html))
    height = max(image.height for image in pages.values())
    for engine in missing:
        pages[engine] = placeholder(f"{engine}: not installed", height)
    sheet = side_by_side({engine: pages[engine] for engine in ENGINES})
    # A palette of 64 colours keeps the PNG small; text and rules stay sharp.
    sheet.quantize(colors=64).save(arguments.out, optimize=True)
    print(f"{arguments.out}: {arguments.out.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
