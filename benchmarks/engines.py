"""The PDF engines' speed: the demo's one-page invoice rendered through the render processes by
chromium (a warm browser) and by weasyprint, each against xhtml2pdf in the same run.

    python -m benchmarks.engines

Method: docs/benchmarks.md, "PDF engines".
"""

from __future__ import annotations

import json

from benchmarks import live
from connector.cli import DEMO_FILES
from connector.rendering import Format, Renderer, TemplateSource
from connector.rendering.engines import Engine

TARGETS = {Engine.CHROMIUM: "< 3", Engine.WEASYPRINT: "none (reported)"}


def main() -> None:
    # One process: every render meets the same browser, as a busy render process's do.
    with live.own_renderer(1, warm=Engine.CHROMIUM) as renderer:
        measure(renderer)


def measure(renderer: Renderer) -> None:
    data = json.loads((DEMO_FILES / "invoice-data.json").read_text(encoding="utf-8"))
    body = (DEMO_FILES / "invoice.html").read_text(encoding="utf-8")

    def render(engine: Engine) -> bytes:
        source = TemplateSource("tpl_bench", "Invoice", body=body, engine=engine)
        return renderer.render("acc_bench", source, data, Format.PDF).content

    for engine in Engine:  # each warm: its first page loads fonts and caches
        assert render(engine).startswith(b"%PDF")
    rows = []
    for engine in (Engine.CHROMIUM, Engine.WEASYPRINT):
        ours, baseline = live.interleaved(
            lambda engine=engine: render(engine),
            lambda: render(Engine.XHTML2PDF),
            rounds=15,
            calls=3,
        )
        rows.append(
            [
                engine.value,
                f"{ours * 1e3:.1f} ms",
                f"{baseline * 1e3:.1f} ms",
                f"{ours / baseline:.2f}",
                TARGETS[engine],
            ]
        )
    live.table("engine | its median | xhtml2pdf's median | ratio | target", rows)


if __name__ == "__main__":
    main()
