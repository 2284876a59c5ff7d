"""Our render path against python-liquid and xhtml2pdf called directly, in the same run.

    python -m benchmarks.rendering

TXT: a 50-line invoice with a text body. PDF: the demo's one-page invoice. The direct baseline
parses once and renders the same HTML (with the same embedded font) the same way; the ratio is
what our path adds (cache lookup, limits, font injection, the resource policy).
"""

from __future__ import annotations

import io
import json
import statistics
import time
from collections.abc import Callable

from liquid import Environment
from xhtml2pdf import pisa

from connector.cli import DEMO_FILES
from connector.rendering import Format, Renderer, TemplateSource
from connector.rendering.pdf import FONTS, _with_font

TARGET = 1.3
TEXT_INVOICE = (
    "Invoice {{ invoice.number }}\n{{ customer.name }}\n\n"
    "{% for line in lines %}{{ line.description }}\t{{ line.quantity }} x {{ line.unit_price }}"
    " = {{ line.quantity | times: line.unit_price }}\n{% endfor %}\n"
    "Total: {{ invoice.total }} {{ invoice.currency }}\n"
)


def median_seconds(function: Callable[[], object], rounds: int, calls: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def interleaved(ours: Callable[[], object], direct: Callable[[], object], rounds: int, calls: int):
    ours_samples, direct_samples = [], []
    for _ in range(rounds):
        ours_samples.append(median_seconds(ours, 1, calls))
        direct_samples.append(median_seconds(direct, 1, calls))
    return statistics.median(ours_samples), statistics.median(direct_samples)


def main() -> None:
    renderer = Renderer()
    data = json.loads((DEMO_FILES / "invoice-data.json").read_text(encoding="utf-8"))
    fifty_lines = dict(
        data, lines=[dict(data["lines"][i % 3], description=f"Item {i}") for i in range(50)]
    )
    html_body = (DEMO_FILES / "invoice.html").read_text(encoding="utf-8")
    text_template = TemplateSource("tpl_bench", "Invoice", body=html_body, text_body=TEXT_INVOICE)
    pdf_template = TemplateSource("tpl_bench", "Invoice", body=html_body)

    environment = Environment()
    parsed_text = environment.from_string(TEXT_INVOICE)
    parsed_html = environment.from_string(html_body)

    def direct_pdf() -> bytes:
        output = io.BytesIO()
        html = _with_font(parsed_html.render(**data))
        pisa.CreatePDF(html, dest=output, path=str(FONTS / "document.html"), encoding="utf-8")
        return output.getvalue()

    assert renderer.render(text_template, fifty_lines, Format.TXT).content.decode() == (
        parsed_text.render(**fifty_lines)
    )
    txt_ours, txt_direct = interleaved(
        lambda: renderer.render(text_template, fifty_lines, Format.TXT),
        lambda: parsed_text.render(**fifty_lines),
        rounds=30,
        calls=50,
    )
    pdf_ours, pdf_direct = interleaved(
        lambda: renderer.render(pdf_template, data, Format.PDF),
        direct_pdf,
        rounds=15,
        calls=3,
    )
    print("| render | ours (median) | direct (median) | ratio | target |")
    print("|---|---|---|---|---|")
    for name, ours, direct in (
        ("TXT, 50-line invoice", txt_ours, txt_direct),
        ("PDF, 1-page invoice", pdf_ours, pdf_direct),
    ):
        print(
            f"| {name} | {ours * 1e3:.2f} ms | {direct * 1e3:.2f} ms | "
            f"{ours / direct:.2f} | ≤ {TARGET} |"
        )


if __name__ == "__main__":
    main()
