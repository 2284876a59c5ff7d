"""TemplateTo's render API: same paths, real files read back."""

from __future__ import annotations

import base64
import io

import pytest
from pypdf import PdfReader

from ..helpers import key_header

UNICODE_SAMPLE = "Café Łódź – 5 €"  # noqa: RUF001  (the en dash is the point)


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


@pytest.fixture
def template(services, account):
    from connector.templates import TemplateFields

    return services.templates.create(
        account.id,
        TemplateFields(
            name="Greeting",
            body="<html><body><h1>Hello {{ name }}</h1><p>{{ note }}</p>"
            "{% for item in items %}<p>{{ item }}</p>{% endfor %}</body></html>",
        ),
    )


def test_pdf_render_returns_the_file(client, standard_key, template) -> None:
    response = client.post(
        f"/render/pdf/{template.id}",
        json={"name": "Ada", "note": UNICODE_SAMPLE, "items": ["one", "two"]},
        headers=key_header(standard_key.value),
    )

    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    text = pdf_text(response.data)
    assert "Hello Ada" in text and UNICODE_SAMPLE in text and "two" in text
    assert f'filename="{template.id}.pdf"' in response.headers["Content-Disposition"]


def test_txt_render_derives_text_from_the_html(client, standard_key, template) -> None:
    response = client.post(
        f"/render/txt/{template.id}",
        json={"name": "Ada", "note": UNICODE_SAMPLE, "items": ["one"]},
        headers=key_header(standard_key.value),
    )

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == f"Hello Ada\n\n{UNICODE_SAMPLE}\n\none\n"


def test_as_byte_array_answers_base64_json(client, standard_key, template) -> None:
    headers = key_header(standard_key.value)

    pdf = client.post(
        f"/render/pdf/{template.id}/as-byte-array", json={"name": "A"}, headers=headers
    )
    txt = client.post(
        f"/render/txt/{template.id}/as-byte-array", json={"name": "A"}, headers=headers
    )

    assert pdf.status_code == 200 and pdf.is_json
    assert base64.b64decode(pdf.json).startswith(b"%PDF-")
    assert base64.b64decode(txt.json).decode() == "Hello A\n"


def test_pdf_from_html(client, standard_key) -> None:
    html = f"<html><body><p>{UNICODE_SAMPLE}</p></body></html>"

    response = client.post(
        "/render/pdf/fromhtml",
        json={"base64HtmlString": base64.b64encode(html.encode()).decode()},
        headers=key_header(standard_key.value),
    )
    bad = client.post(
        "/render/pdf/fromhtml",
        json={"base64HtmlString": "%%% not base64"},
        headers=key_header(standard_key.value),
    )

    assert response.status_code == 200
    assert UNICODE_SAMPLE in pdf_text(response.data)
    assert bad.status_code == 400 and bad.json["error"]["code"] == "invalid_base64_html"


def test_missing_variables_render_empty_unless_strict(client, standard_key, template) -> None:
    headers = key_header(standard_key.value)

    lenient = client.post(f"/render/txt/{template.id}", json={}, headers=headers)
    strict = client.post(f"/render/txt/{template.id}?strict=true", json={}, headers=headers)

    assert lenient.status_code == 200 and lenient.get_data(as_text=True) == "Hello\n"
    assert strict.status_code == 422
    error = strict.json["error"]
    assert error["code"] == "template_variable_missing"
    assert "'name'" in error["message"]
    assert error["details"] == {"line": 1, "column": 26}


@pytest.mark.parametrize("body", [[1, 2], '"text"', "3"])
def test_data_that_is_not_an_object_is_a_400(client, standard_key, template, body) -> None:
    response = client.post(
        f"/render/pdf/{template.id}",
        data=body if isinstance(body, str) else str(body),
        content_type="application/json",
        headers=key_header(standard_key.value),
    )

    assert response.status_code == 400
    assert response.json["error"]["code"] == "data_not_object"


def test_unknown_template_is_a_404(client, standard_key) -> None:
    response = client.post("/render/pdf/tpl_nope", json={}, headers=key_header(standard_key.value))

    assert response.status_code == 404
    assert response.json["error"]["code"] == "template_not_found"


def test_render_needs_a_key(client, template) -> None:
    assert client.post(f"/render/pdf/{template.id}", json={}).status_code == 401


def test_a_chunked_body_is_read(client, standard_key, template) -> None:
    response = client.post(
        f"/render/txt/{template.id}",
        input_stream=io.BytesIO(b'{"name": "Ada"}'),
        # What gunicorn declares for a chunked body.
        environ_overrides={"wsgi.input_terminated": True},
        headers={
            **key_header(standard_key.value),
            "Transfer-Encoding": "chunked",
            "Content-Type": "application/json",
        },
    )

    assert response.status_code == 200
    assert response.get_data(as_text=True).startswith("Hello Ada")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_templates_naming_common_fonts_keep_unicode_text(client, services, account, standard_key):
    from connector.templates import TemplateFields

    styled = services.templates.create(
        account.id,
        TemplateFields(
            name="Styled",
            body="<style>body { font-family: Arial, sans-serif }</style>"
            f"<p>{UNICODE_SAMPLE}</p><p><i>Łódź</i></p>",
        ),
    )

    response = client.post(
        f"/render/pdf/{styled.id}", json={}, headers=key_header(standard_key.value)
    )

    reader = PdfReader(io.BytesIO(response.data))
    fonts = {
        str(f.get_object()["/BaseFont"]) for f in reader.pages[0]["/Resources"]["/Font"].values()
    }
    assert UNICODE_SAMPLE in pdf_text(response.data)
    assert any("DejaVuSans-Oblique" in font for font in fonts)


def test_an_include_is_refused_at_save_and_the_list_still_works(client, standard_key) -> None:
    headers = key_header(standard_key.value)

    refused = client.post(
        "/v1/templates", json={"name": "x", "body": '{% include "x" %}'}, headers=headers
    )

    assert refused.status_code == 422
    assert refused.json["error"]["code"] == "template_syntax_error"
    assert client.get("/v1/templates", headers=headers).status_code == 200
