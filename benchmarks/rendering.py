"""Our render path (a render slot, a render process and back) against python-liquid and
xhtml2pdf called directly in this process, in the same run.

    python -m benchmarks.rendering

Method: docs/benchmarks.md, "Rendering".
"""

from __future__ import annotations

import io
import json

from liquid import Environment
from xhtml2pdf import pisa

from benchmarks import live
from connector.cli import DEMO_FILES
from connector.rendering import Format, Renderer, TemplateSource
from connector.rendering.page import with_style
from connector.rendering.pdf import FONT_CSS, FONTS

TARGETS = {"TXT": 1.5, "PDF": 1.1}
TEXT_INVOICE = (
    "Invoice {{ invoice.number }}\n{{ customer.name }}\n\n"
    "{% for line in lines %}{{ line.description }}\t{{ line.quantity }} x {{ line.unit_price }}"
    " = {{ line.quantity | times: line.unit_price }}\n{% endfor %}\n"
    "Total: {{ invoice.total }} {{ invoice.currency }}\n"
)


def main() -> None:
    with live.own_renderer(2) as renderer:
        measure(renderer)


def measure(renderer: Renderer) -> None:
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
        html = with_style(parsed_html.render(**data), FONT_CSS, first=True)
        pisa.CreatePDF(html, dest=output, path=str(FONTS / "document.html"), encoding="utf-8")
        return output.getvalue()

    account = "acc_bench"
    assert renderer.render(account, text_template, fifty_lines, Format.TXT).content.decode() == (
        parsed_text.render(**fifty_lines)
    )
    txt_ours, txt_direct = live.interleaved(
        lambda: renderer.render(account, text_template, fifty_lines, Format.TXT),
        lambda: parsed_text.render(**fifty_lines),
        rounds=30,
        calls=50,
    )
    pdf_ours, pdf_direct = live.interleaved(
        lambda: renderer.render(account, pdf_template, data, Format.PDF),
        direct_pdf,
        rounds=15,
        calls=3,
    )
    rows = [
        [name, f"{ours * 1e3:.2f} ms", f"{direct * 1e3:.2f} ms", f"{ours / direct:.2f}", target]
        for name, ours, direct, target in (
            ("TXT, 50-line invoice", txt_ours, txt_direct, f"≤ {TARGETS['TXT']}"),
            ("PDF, 1-page invoice", pdf_ours, pdf_direct, f"≤ {TARGETS['PDF']}"),
        )
    ]
    live.table("render | ours (median) | direct (median) | ratio | target", rows)


if __name__ == "__main__":
    main()
