"""The engine's own limits and walls: loops, output, values, files. Time and memory are the
render processes' (test_sandbox.py)."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from connector.errors import RenderLimitExceeded, TemplateRenderError, TemplateSyntaxError
from connector.rendering import Format, TemplateSource, liquid
from connector.rendering.pdf import html_to_pdf
from connector.rendering.text import html_to_text


def test_loops_past_the_limit_are_stopped_with_a_422() -> None:
    with pytest.raises(RenderLimitExceeded) as stopped:
        liquid.render("{% for i in (1..10000000) %}{% endfor %}", {})

    assert stopped.value.status == 422
    assert "iterations" in stopped.value.message


def test_output_past_the_limit_is_stopped() -> None:
    with pytest.raises(RenderLimitExceeded) as stopped:
        liquid.render("{% for i in (1..90000) %}{{ chunk }}{% endfor %}", {"chunk": "x" * 100})

    assert "grew past" in stopped.value.message


@pytest.mark.parametrize("tag", ['{% include "/etc/passwd" %}', '{% render "other" %}'])
def test_templates_cannot_include_files_or_other_templates(tag: str) -> None:
    with pytest.raises(TemplateSyntaxError) as refused:
        liquid.parse(tag)

    assert refused.value.details == {"line": 1, "column": 4}
    assert "unexpected tag" in refused.value.message


@pytest.mark.parametrize(
    "source",
    [
        '{% assign L = "xxxxxxxxxx" | split: "#" %}{% for i in (1..29) %}'
        '{% assign L = L | concat: L | join: "" | split: "#" %}{% endfor %}',
        '{% assign s = "x" %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}',
        "{% assign n = 7 %}{% for i in (1..40) %}{% assign n = n | times: n %}{% endfor %}",
        # A 39-character template that would otherwise make a 170 MB string: ranges are values.
        '{{ (1..20000000) | join: "," }}',
        "{% assign r = (1..100000000) %}{{ r | reverse | first }}",
    ],
)
def test_values_cannot_grow_without_bound(source: str) -> None:
    with pytest.raises(RenderLimitExceeded) as stopped:
        liquid.render(source, {})

    assert "grew past" in stopped.value.message


def test_captures_are_bounded(monkeypatch) -> None:
    source = "{% capture s %}{% for i in (1..4000) %}{{ big }}{% endfor %}{% endcapture %}"

    with pytest.raises(RenderLimitExceeded):
        liquid.render(source, {"big": "x" * 500_000})


@pytest.mark.parametrize(
    ("source", "data"),
    [
        ("{{ a | sum }}", {"a": ["x", {}]}),
        ("{{ s | base64_decode }}", {"s": "/w=="}),
        ("{{ n | round }}", {"n": float("inf")}),
        ("{{ n | floor }}", {"n": float("nan")}),
        ('{{ s | date: "%Y" }}', {"s": "99999999999999999999"}),
    ],
)
def test_filters_failing_on_data_are_a_422(source: str, data: dict) -> None:
    with pytest.raises(TemplateRenderError) as failed:
        liquid.render(source, data)

    assert failed.value.status == 422


def test_strict_mode_still_honours_default() -> None:
    assert liquid.render('{{ x | default: "y" }}', {}, strict=True) == "y"


def test_pdf_cannot_read_local_files() -> None:
    html = '<p>before</p><img src="/etc/passwd"><img src="file:///etc/hostname"><p>after</p>'

    text = PdfReader(io.BytesIO(html_to_pdf(html))).pages[0].extract_text()

    assert "before" in text and "after" in text
    assert "root:" not in text


def test_a_text_body_is_rendered_as_it_is(renderer) -> None:
    source = TemplateSource(
        "tpl_test", "Test", body="<p>ignored</p>", text_body="Dear {{ name }},\n\n  Thanks.\n"
    )

    rendered = renderer.render("acc_test", source, {"name": "Ada"}, Format.TXT)

    assert rendered.content == b"Dear Ada,\n\n  Thanks.\n"


def test_preserve_line_breaks_keeps_the_data_lines_in_the_pdf(renderer) -> None:
    source = TemplateSource("tpl_test", "Test", body="<p>{{ address }}</p>")
    data = {"address": "1 Main St\nSpringfield"}

    kept = renderer.render("acc_test", source, data, Format.PDF, preserve_line_breaks=True)
    joined = renderer.render("acc_test", source, data, Format.PDF)

    def text(content: bytes) -> str:
        return PdfReader(io.BytesIO(content)).pages[0].extract_text()

    assert "1 Main St\nSpringfield" in text(kept.content)
    assert "1 Main St Springfield" in text(joined.content)


def test_preserve_line_breaks_keeps_the_data_lines_in_a_txt_made_from_html(
    renderer,
) -> None:
    source = TemplateSource("tpl_test", "Test", body="<p>{{ address }}</p>")
    data = {"address": "1 Main St\nSpringfield"}

    kept = renderer.render("acc_test", source, data, Format.TXT, preserve_line_breaks=True)
    joined = renderer.render("acc_test", source, data, Format.TXT)

    assert kept.content == b"1 Main St\nSpringfield\n"
    assert joined.content == b"1 Main St Springfield\n"


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<![<![", ""),
        ("<!--" * 60_000, ""),
        (">" + "<!--" * 60_000, ">\n"),
        ("<p>a &amp; b<br>c</p><p>d <!-- hidden --> e</p>", "a & b\nc\n\nd e\n"),
        ("<table><tr><td>1</td><td>2</td></tr></table>", "1\t2\n"),
        ("<head><title>T</title><style>p {}</style></head><script>x()</script>body", "body\n"),
        ("<p>unclosed <b>bold <i>both", "unclosed bold both\n"),
        ("\x00\x01 text", "\ufffd\x01 text\n"),
        ("<p>a \ud800 b</p><p>c</p>", "a ? b\n\nc\n"),
        ("<p>Łódź — 東京</p>", "Łódź — 東京\n"),
    ],
)
def test_any_markup_becomes_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_parsed_templates_kept_for_renders_stay_within_their_bound() -> None:
    # A parsed template takes about 125 bytes per character: these 12 would take about 150 MB,
    # over twice the 60 MB the cache may hold.
    for number in range(12):
        liquid.render(f"{number}" + "{{ a }}" * 14_000, {})

    kept = liquid._parsed  # our own cache: what a render process holds between renders
    assert kept.currsize <= liquid.CACHE_CHARS
    assert len(kept) < 10
