"""The local engine's limits and walls: no template can hang the service or read our files."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from connector.rendering import Format, Renderer, TemplateSource, liquid
from connector.rendering.pdf import html_to_pdf


def test_loops_past_the_limit_are_stopped_with_a_422() -> None:
    with pytest.raises(liquid.RenderLimitExceeded) as stopped:
        liquid.render("{% for i in (1..10000000) %}{% endfor %}", {})

    assert stopped.value.status == 422
    assert "iterations" in stopped.value.message


def test_output_past_the_limit_is_stopped() -> None:
    with pytest.raises(liquid.RenderLimitExceeded) as stopped:
        liquid.render("{% for i in (1..90000) %}{{ chunk }}{% endfor %}", {"chunk": "x" * 100})

    assert "grew past" in stopped.value.message


def test_renders_that_run_too_long_are_stopped(monkeypatch) -> None:
    monkeypatch.setattr(liquid, "RENDER_SECONDS_LIMIT", 0.0)

    with pytest.raises(liquid.RenderLimitExceeded) as stopped:
        liquid.render("{% for i in (1..10) %}{{ i }}{% endfor %}", {})

    assert "longer than" in stopped.value.message


def test_includes_cannot_read_files() -> None:
    with pytest.raises(liquid.TemplateRenderError) as refused:
        liquid.render('{% include "/etc/passwd" %}', {})

    assert "not supported" in refused.value.message


def test_pdf_cannot_read_local_files() -> None:
    html = '<p>before</p><img src="/etc/passwd"><img src="file:///etc/hostname"><p>after</p>'

    text = PdfReader(io.BytesIO(html_to_pdf(html))).pages[0].extract_text()

    assert "before" in text and "after" in text
    assert "root:" not in text


def test_a_text_body_is_rendered_as_it_is() -> None:
    source = TemplateSource(
        "tpl_test", "Test", body="<p>ignored</p>", text_body="Dear {{ name }},\n\n  Thanks.\n"
    )

    rendered = Renderer().render(source, {"name": "Ada"}, Format.TXT)

    assert rendered.content == b"Dear Ada,\n\n  Thanks.\n"


def test_preserve_line_breaks_keeps_the_data_lines_in_the_pdf() -> None:
    source = TemplateSource("tpl_test", "Test", body="<p>{{ address }}</p>")
    data = {"address": "1 Main St\nSpringfield"}

    kept = Renderer().render(source, data, Format.PDF, preserve_line_breaks=True)
    joined = Renderer().render(source, data, Format.PDF)

    def text(content: bytes) -> str:
        return PdfReader(io.BytesIO(content)).pages[0].extract_text()

    assert "1 Main St\nSpringfield" in text(kept.content)
    assert "1 Main St Springfield" in text(joined.content)
