"""Choosing a PDF engine and page setup through the API, and the warning of scripts an engine
cannot print correctly (its fonts lack them, or it cannot shape them)."""

from __future__ import annotations

import base64
import io

import pytest
from pypdf import PdfReader

from connector.app import create_app
from connector.services import EXTENSION

from ..helpers import key_header, pdf_producer

JAPANESE = "こんにちは 東京"
ARABIC = "فاتورة رقم ١٢٣"
HEBREW = "חשבונית מספר"


def from_html(client, key: str, html: str, **options):
    body = {"base64HtmlString": base64.b64encode(html.encode()).decode(), **options}
    return client.post("/render/pdf/fromhtml", json=body, headers=key_header(key))


def test_fromhtml_takes_an_engine_and_a_page_setup(client, standard_key) -> None:
    page = {"size": "Letter", "orientation": "landscape", "margin_mm": 20, "page_numbers": True}

    default = from_html(client, standard_key.value, "<p>Hello</p>")
    weasy = from_html(client, standard_key.value, "<p>Hello</p>", engine="weasyprint", page=page)

    assert pdf_producer(default.data).startswith("xhtml2pdf")
    assert pdf_producer(weasy.data).startswith("WeasyPrint")
    first = PdfReader(io.BytesIO(weasy.data)).pages[0]
    assert (float(first.mediabox.width), float(first.mediabox.height)) == (792, 612)
    assert "Page 1 of 1" in first.extract_text()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"engine": "wkhtmltopdf"}, "engine"),
        ({"page": {"size": "A3"}}, "size"),
        ({"page": {"margin_mm": -1}}, "margin_mm"),
        ({"page": {"columns": 2}}, "columns"),
    ],
)
def test_an_unknown_engine_or_page_option_is_a_422_naming_it(
    client, standard_key, options, field
) -> None:
    response = from_html(client, standard_key.value, "<p>x</p>", **options)

    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_failed"
    assert field in response.json["error"]["message"]


def test_characters_the_fonts_cannot_draw_are_named_in_a_header(client, standard_key) -> None:
    boxed = from_html(client, standard_key.value, f"<p>Hello {JAPANESE}</p>")
    drawn = from_html(client, standard_key.value, f"<p>Hello {JAPANESE}</p>", engine="weasyprint")
    latin = from_html(client, standard_key.value, "<p>Hello Łódź</p>")

    assert boxed.status_code == 200
    assert boxed.headers["X-Render-Warning"].startswith("missing-scripts: Han, Hiragana:")
    assert "X-Render-Warning" not in drawn.headers
    assert "X-Render-Warning" not in latin.headers


def test_scripts_xhtml2pdf_cannot_shape_are_named_in_the_header_and_the_document(
    client, standard_key
) -> None:
    headers = key_header(standard_key.value)
    html = f"<p>Invoice {ARABIC} {HEBREW}</p>"
    template = client.post(
        "/v1/templates", json={"name": "RTL", "body": "<p>{{ text }}</p>"}, headers=headers
    ).json

    unshaped = from_html(client, standard_key.value, html)
    shaped = from_html(client, standard_key.value, html, engine="weasyprint")
    document = client.post(
        "/v1/documents",
        json={"template_id": template["id"], "data": {"text": f"{ARABIC} {HEBREW}"}},
        headers=headers,
    )

    # DejaVu Sans has these letters: what xhtml2pdf lacks is shaping and right-to-left order.
    assert unshaped.status_code == 200
    warning = unshaped.headers["X-Render-Warning"]
    assert warning.startswith("missing-scripts: Arabic, Hebrew:")
    assert "weasyprint or chromium" in warning
    assert "X-Render-Warning" not in shaped.headers
    assert document.json["missing_scripts"] == ["Arabic", "Hebrew"]
    assert document.headers["X-Render-Warning"] == warning


def test_a_template_names_its_engine_and_page_setup(client, standard_key) -> None:
    headers = key_header(standard_key.value)
    page = {"size": "Letter", "orientation": "portrait", "margin_mm": 10, "page_numbers": True}

    created = client.post(
        "/v1/templates",
        json={"name": "Modern", "body": "<p>{{ n }}</p>", "engine": "weasyprint", "page": page},
        headers=headers,
    ).json
    got = client.get(f"/v1/templates/{created['id']}", headers=headers).json
    rendered = client.post(f"/render/pdf/{created['id']}", json={"n": 1}, headers=headers)
    # Replaced without them: the request's engine, else the service's default, decides again.
    client.put(
        f"/v1/templates/{created['id']}",
        json={"name": "Modern", "body": "<p>{{ n }}</p>"},
        headers=headers,
    )
    replaced = client.get(f"/v1/templates/{created['id']}", headers=headers).json
    plain = client.post(f"/render/pdf/{created['id']}", json={"n": 1}, headers=headers)

    assert (got["engine"], got["page"]) == ("weasyprint", page)
    assert pdf_producer(rendered.data).startswith("WeasyPrint")
    assert float(PdfReader(io.BytesIO(rendered.data)).pages[0].mediabox.width) == 612
    assert (replaced["engine"], replaced["page"]) == (None, None)
    assert pdf_producer(plain.data).startswith("xhtml2pdf")


def test_documents_name_the_scripts_their_engine_could_not_draw(
    client, clock, standard_key
) -> None:
    headers = key_header(standard_key.value)
    template = client.post(
        "/v1/templates", json={"name": "Greeting", "body": "<p>{{ text }}</p>"}, headers=headers
    ).json

    def create(**extra):
        body = {"template_id": template["id"], "data": {"text": JAPANESE}, **extra}
        return client.post("/v1/documents", json=body, headers=headers)

    boxed = create()
    clock.advance(seconds=1)
    drawn = create(engine="weasyprint")
    listed = client.get("/v1/documents", headers=headers).json["data"]

    assert boxed.json["missing_scripts"] == ["Han", "Hiragana"]
    assert "Han, Hiragana" in boxed.headers["X-Render-Warning"]
    assert drawn.json["missing_scripts"] == [] and "X-Render-Warning" not in drawn.headers
    assert [d["missing_scripts"] for d in listed] == [[], ["Han", "Hiragana"]]


def test_an_engine_not_installed_is_a_422_naming_what_to_install(
    settings, standard_key, tmp_path
) -> None:
    app = create_app(settings.model_copy(update={"chromium_path": tmp_path / "no-chromium"}))
    try:
        response = from_html(app.test_client(), standard_key.value, "<p>x</p>", engine="chromium")
    finally:
        app.extensions[EXTENSION].close()

    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "engine_unavailable" and error["details"] == {"engine": "chromium"}
    assert "apt-get install chromium" in error["message"]
