"""Documents: rendered, recorded, downloadable through a signed link that needs no key."""

from __future__ import annotations

import io
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from pypdf import PdfReader
from sqlalchemy.exc import IntegrityError

from connector.clients import Client
from connector.documents import DocumentInfo, DocumentStore, NewDocument
from connector.links import DownloadLinks
from connector.paging import PageQuery
from connector.storage import LocalFileStore
from connector.templates import TemplateFields

from ..helpers import key_header


@pytest.fixture
def template(services, account):
    return services.templates.create(
        account.id,
        TemplateFields(name="Invoice / Q4", body="<h1>Invoice {{ number }}</h1><p>{{ note }}</p>"),
    )


def create(client, key, template, user_agent="Zapier", **fields) -> dict:
    body = {"template_id": template.id, "data": {"number": "42", "note": "Paid"}} | fields
    response = client.post("/v1/documents", json=body, headers=key_header(key.value, user_agent))
    assert response.status_code == 201, response.json
    return response.json


def store_rendering_with(services, renderer) -> DocumentStore:
    """A document store like the service's, on its database and files, with ``renderer``."""
    return DocumentStore(
        services.db,
        LocalFileStore(services.settings.data_dir / "documents"),
        renderer,
        services.templates,
        DownloadLinks("k" * 32, "http://127.0.0.1:8000"),
        services.clock,
        timedelta(hours=1),
    )


def download(client, file_url: str):
    return client.get(urlsplit(file_url).path)


def test_a_pdf_document_is_recorded_and_downloadable_without_a_key(
    client, standard_key, template
) -> None:
    document = create(client, standard_key, template)

    file = download(client, document["file_url"])

    assert document["id"].startswith("doc_")
    assert document["template_name"] == "Invoice / Q4"
    assert document["filename"] == "Invoice _ Q4.pdf"
    assert document["client"] == "zapier"
    assert document["expires_at"] == "2026-11-21T10:03:00Z"
    assert standard_key.value not in document["file_url"]
    assert file.status_code == 200
    assert file.mimetype == "application/pdf"
    assert "attachment" in file.headers["Content-Disposition"]
    assert "Invoice _ Q4.pdf" in file.headers["Content-Disposition"]
    assert len(file.data) == document["size"]
    assert "Invoice 42" in PdfReader(io.BytesIO(file.data)).pages[0].extract_text()


def test_a_txt_document_with_a_chosen_filename(client, standard_key, template) -> None:
    document = create(client, standard_key, template, "n8n", format="txt", filename="receipt")

    file = download(client, document["file_url"])

    assert document["client"] == "n8n" and document["filename"] == "receipt.txt"
    assert file.mimetype == "text/plain"
    assert file.get_data(as_text=True) == "Invoice 42\n\nPaid\n"


def test_list_newest_first_filtered_by_template_and_get(
    client, services, clock, account, standard_key, template
):
    other = services.templates.create(account.id, TemplateFields(name="Other", body="x"))
    first = create(client, standard_key, template)
    clock.advance(seconds=1)
    second = create(client, standard_key, other)
    clock.advance(seconds=1)
    third = create(client, standard_key, template)
    headers = key_header(standard_key.value)

    everything = client.get("/v1/documents", headers=headers).json
    filtered = client.get(f"/v1/documents?template_id={template.id}&limit=1", headers=headers).json
    page_two = client.get(
        f"/v1/documents?template_id={template.id}&limit=1&cursor={filtered['next_cursor']}",
        headers=headers,
    ).json
    fetched = client.get(f"/v1/documents/{second['id']}", headers=headers).json

    assert [d["id"] for d in everything["data"]] == [third["id"], second["id"], first["id"]]
    assert [d["id"] for d in filtered["data"] + page_two["data"]] == [third["id"], first["id"]]
    assert fetched == second | {"file_url": fetched["file_url"]}


def test_expired_links_are_410_and_files_are_cleaned_up(
    client, services, clock, standard_key, template
):
    document = create(client, standard_key, template)
    clock.advance(hours=24)

    expired = download(client, document["file_url"])
    purged = services.documents.purge_expired()
    record = client.get(f"/v1/documents/{document['id']}", headers=key_header(standard_key.value))

    assert expired.status_code == 410
    assert expired.json["error"]["code"] == "download_link_expired"
    assert purged == 1
    assert not list((services.settings.data_dir / "documents").rglob("*.pdf"))
    assert record.status_code == 200 and record.json["file_url"] is None


def test_tampered_links_are_403(client, standard_key, template) -> None:
    url = create(client, standard_key, template)["file_url"]
    token = urlsplit(url).path.rsplit("/", 1)[1]
    altered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    for path in (f"/files/{altered}", f"/files/{token[:20]}", "/files/nonsense"):
        response = client.get(path)
        assert response.status_code == 403
        assert response.json["error"]["code"] == "download_link_invalid"


def test_documents_of_another_account_are_not_found(client, services, standard_key, template):
    other = services.accounts.create("Globex")
    their_key = services.keys.create(other.id, "Theirs")
    mine = create(client, standard_key, template)

    response = client.get(f"/v1/documents/{mine['id']}", headers=key_header(their_key.value))
    listed = client.get("/v1/documents", headers=key_header(their_key.value)).json
    render = client.post(
        "/v1/documents", json={"template_id": template.id}, headers=key_header(their_key.value)
    )

    assert response.status_code == 404
    assert response.json["error"]["code"] == "document_not_found"
    assert listed["data"] == []
    assert render.status_code == 404 and render.json["error"]["code"] == "template_not_found"


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"template_id": "tpl_nope"}, 404, "template_not_found"),
        ({"data": [1]}, 422, "validation_failed"),
        ({"data": {}, "strict": True}, 422, "template_variable_missing"),
        ({"format": "docx"}, 422, "validation_failed"),
    ],
)
def test_a_failed_render_leaves_no_row_and_no_file(
    client, services, standard_key, template, fields, status, code
) -> None:
    body = {"template_id": template.id, "data": {"number": 1}} | fields

    response = client.post("/v1/documents", json=body, headers=key_header(standard_key.value))

    assert response.status_code == status
    assert response.json["error"]["code"] == code
    assert client.get("/v1/documents", headers=key_header(standard_key.value)).json["data"] == []
    assert not (services.settings.data_dir / "documents").exists() or not list(
        (services.settings.data_dir / "documents").rglob("*.*")
    )


def test_a_failed_record_write_removes_the_file(services, account, template) -> None:
    class DeletesTheTemplateMeanwhile:
        """A render during which another request deletes the template: the insert then fails
        on the foreign key, for real."""

        def render(self, *args, **kwargs):
            services.templates.delete(account.id, template.id)
            return services.renderer.render(*args, **kwargs)

    store = store_rendering_with(services, DeletesTheTemplateMeanwhile())

    with pytest.raises(IntegrityError):
        store.create(account.id, NewDocument(template_id=template.id), Client.OTHER)

    assert not list((services.settings.data_dir / "documents").rglob("*.*"))
    assert services.documents.list(account.id, PageQuery()).data == []


def test_housekeeping_purges_expired_files_without_any_new_document(
    client, services, clock, standard_key, template
) -> None:
    create(client, standard_key, template)
    clock.advance(hours=25)

    services.documents.housekeeping()

    assert not list((services.settings.data_dir / "documents").rglob("*.pdf"))


def idempotent(client, key, body, idempotency_key: str):
    headers = {**key_header(key.value), "Idempotency-Key": idempotency_key}
    return client.post("/v1/documents", json=body, headers=headers)


def stored_files(services) -> list:
    return list((services.settings.data_dir / "documents").rglob("*.*"))


def test_a_retry_with_the_same_idempotency_key_answers_the_first_document(
    client, services, account, standard_key, template
) -> None:
    body = {"template_id": template.id, "data": {"number": "42"}}

    first = idempotent(client, standard_key, body, "order-42-invoice")
    retry = idempotent(client, standard_key, body, "order-42-invoice")
    other = idempotent(client, standard_key, body, "order-43-invoice")

    assert first.status_code == retry.status_code == other.status_code == 201
    assert retry.json == first.json
    assert other.json["id"] != first.json["id"]
    listed = client.get("/v1/documents", headers=key_header(standard_key.value)).json["data"]
    assert sorted(d["id"] for d in listed) == sorted([other.json["id"], first.json["id"]])
    assert len(stored_files(services)) == 2
    events = services.events.list(account.id, PageQuery()).data
    assert sum(e.type == "document.created" for e in events) == 2


def test_an_idempotency_key_reused_for_another_request_is_a_422(
    client, services, standard_key, template
) -> None:
    first = idempotent(client, standard_key, {"template_id": template.id}, "k-1")

    changed = {"template_id": template.id, "format": "txt"}
    reused = idempotent(client, standard_key, changed, "k-1")

    assert reused.status_code == 422
    assert reused.json["error"]["code"] == "idempotency_key_reused"
    assert first.json["id"] in reused.json["error"]["message"]
    assert len(stored_files(services)) == 1


def test_idempotency_keys_belong_to_one_account(client, services, standard_key, template) -> None:
    globex = services.accounts.create("Globex")
    their_key = services.keys.create(globex.id, "Theirs")
    theirs = services.templates.create(globex.id, TemplateFields(name="Theirs", body="x"))

    mine = idempotent(client, standard_key, {"template_id": template.id}, "same")
    other = idempotent(client, their_key, {"template_id": theirs.id}, "same")

    assert mine.status_code == other.status_code == 201
    assert mine.json["id"] != other.json["id"]


def nested_body(template, depth: int) -> str:
    """A request body whose data is ``depth`` objects deep (written out: too deep to dump)."""
    data = '{"a":' * depth + "1" + "}" * depth
    return f'{{"template_id": "{template.id}", "format": "txt", "data": {data}}}'


def test_data_deeper_than_pydantic_serializes_renders_with_an_idempotency_key_too(
    client, standard_key, template
) -> None:
    # pydantic serializes 255 levels at most: the request digest used to fail (a 500) past them.
    # Deeper still (950), the answer is a 4xx: tests/e2e/test_http_edges.py.
    headers = {**key_header(standard_key.value), "Idempotency-Key": "deep-2"}

    def send():
        return client.post(
            "/v1/documents",
            data=nested_body(template, 300),
            content_type="application/json",
            headers=headers,
        )

    first, retry = send(), send()

    assert first.status_code == retry.status_code == 201
    assert retry.json["id"] == first.json["id"]


@pytest.mark.parametrize("value", ["", "has space", "é", "x" * 256])
def test_an_unusable_idempotency_key_is_a_422(client, standard_key, template, value) -> None:
    answer = idempotent(client, standard_key, {"template_id": template.id}, value)

    assert answer.status_code == 422
    assert "Idempotency-Key" in answer.json["error"]["message"]


def test_two_requests_racing_with_one_idempotency_key_make_one_document(
    services, account, template
) -> None:
    request = NewDocument(template_id=template.id, data={"number": "7"})
    retried: list[DocumentInfo] = []

    class RetriedMeanwhile:
        """A render during which the client's retry (same key) renders and commits first."""

        def render(self, *args, **kwargs):
            if not retried:
                retried.append(
                    services.documents.create(
                        account.id, request, Client.OTHER, idempotency_key="race"
                    )
                )
            return services.renderer.render(*args, **kwargs)

    store = store_rendering_with(services, RetriedMeanwhile())

    slower = store.create(account.id, request, Client.OTHER, idempotency_key="race")

    assert slower.id == retried[0].id
    assert [d.id for d in services.documents.list(account.id, PageQuery()).data] == [slower.id]
    assert len(stored_files(services)) == 1
