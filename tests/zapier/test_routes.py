"""The /zapier routes answer in exactly the shapes Zapier expects."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector import events
from connector.clients import Client
from connector.documents import NewDocument
from connector.events import EventType
from connector.keys import NewKeyValue
from connector.paging import PageQuery
from connector.rendering.engines import Engine
from connector.templates import TemplateFields
from connector.webhooks.delivery import UNTRANSLATABLE

from ..helpers import key_header, pdf_producer

ZAPIER = "Zapier"


@pytest.fixture
def headers(standard_key) -> dict[str, str]:
    return key_header(standard_key.value, ZAPIER)


@pytest.fixture
def invoice(services, account):
    return services.templates.create(
        account.id,
        TemplateFields(name="Invoice", body="<p>Invoice {{ number }}</p>{{ note }}"),
    )


def test_auth_test_is_a_flat_object_with_a_label(client, headers, standard_key) -> None:
    me = client.get("/zapier/me", headers=headers).json

    assert me == {
        "account_id": me["account_id"],
        "account_name": "Acme Ltd",
        "key_id": standard_key.id,
        "key_name": "n8n workflows",
        "key_hint": standard_key.hint,
        "label": "Acme Ltd · n8n workflows",
        "in_grace_period": False,
        "grace_until": None,
    }


def test_triggers_are_bare_arrays_newest_first_and_empty_when_nothing(
    client, services, clock, account, headers
) -> None:
    assert client.get("/zapier/triggers/new_template", headers=headers).json == []
    for name in ("First", "Second", "Third"):
        services.templates.create(account.id, TemplateFields(name=name, body="{{ x }}"))
        clock.advance(seconds=1)

    templates = client.get("/zapier/triggers/new_template", headers=headers).json
    dropdown = client.get("/zapier/triggers/templates", headers=headers).json
    first = client.get("/zapier/triggers/templates?limit=2", headers=headers)
    cursor = first.headers["X-Next-Cursor"]
    second = client.get(f"/zapier/triggers/templates?limit=2&cursor={cursor}", headers=headers)
    unlimited = client.get("/zapier/triggers/new_template?limit=-1", headers=headers).json

    assert [t["name"] for t in templates] == ["Third", "Second", "First"]
    assert set(templates[0]) == {"id", "name", "variables", "created_at"}
    assert templates[0]["variables"] == ["x"]
    assert dropdown == templates  # the dropdown shows the same items' names
    assert [t["name"] for t in first.json] == ["Third", "Second"]
    assert [t["name"] for t in second.json] == ["First"]
    assert second.headers["X-Next-Cursor"] == ""  # the last page
    assert len(unlimited) == 3


def test_create_file_returns_one_object_with_a_signed_file_url(client, headers, invoice):
    created = client.post(
        "/zapier/creates/create_file",
        json={"template": invoice.id, "data": {"number": "42"}, "document_type": "pdf"},
        headers=headers,
    )
    as_text = client.post(
        "/zapier/creates/create_file",
        json={
            "template": invoice.id,
            "advanced": True,
            "data": '{"number": 7, "note": "Paid"}',
            "document_type": "txt",
        },
        headers=headers,
    )

    assert created.status_code == 200
    document = created.json
    assert document["id"].startswith("doc_") and document["format"] == "pdf"
    assert document["filename"] == "Invoice.pdf" and document["template_name"] == "Invoice"
    assert "/files/" in document["file_url"]
    file = client.get("/files/" + document["file_url"].rsplit("/files/", 1)[1])
    assert file.status_code == 200 and file.data.startswith(b"%PDF")
    assert as_text.json["format"] == "txt"
    text = client.get("/files/" + as_text.json["file_url"].rsplit("/files/", 1)[1])
    assert text.get_data(as_text=True) == "Invoice 7\nPaid\n"


def test_create_file_offers_the_engine_where_the_template_names_none(
    client, headers, services, account, invoice
) -> None:
    fixed = services.templates.create(
        account.id, TemplateFields(name="Fixed", body="<p>Fixed</p>", engine=Engine.XHTML2PDF)
    )

    def producer(template_id: str, engine: str) -> str:
        document = client.post(
            "/zapier/creates/create_file",
            json={"template": template_id, "engine": engine},
            headers=headers,
        ).json
        return pdf_producer(services.documents.file(account.id, document["id"]).content)

    assert producer(invoice.id, "weasyprint").startswith("WeasyPrint")
    assert producer(invoice.id, "").startswith("xhtml2pdf")  # empty: the service's default
    assert producer(fixed.id, "weasyprint").startswith("xhtml2pdf")  # the template's own


def test_create_file_names_the_scripts_the_engine_could_not_draw(
    client, headers, services, account
) -> None:
    greeting = services.templates.create(
        account.id, TemplateFields(name="Greeting", body="<p>{{ text }}</p>")
    )

    def create(engine: str) -> dict:
        body = {"template": greeting.id, "data": {"text": "こんにちは 東京"}, "engine": engine}
        return client.post("/zapier/creates/create_file", json=body, headers=headers).json

    # A Zap can branch on it (a Filter step) instead of mailing a PDF of boxes.
    assert create("")["missing_scripts"] == ["Han", "Hiragana"]
    assert create("weasyprint")["missing_scripts"] == []


def test_create_file_errors_a_zapier_user_understands(client, headers, invoice) -> None:
    bad_json = client.post(
        "/zapier/creates/create_file",
        json={"template": invoice.id, "advanced": True, "data": '{\n  "a": 1,\n  oops\n}'},
        headers=headers,
    )
    unknown = client.post(
        "/zapier/creates/create_file", json={"template": "tpl_nope"}, headers=headers
    )

    assert bad_json.status_code == 400
    assert bad_json.json["error"]["message"].startswith(
        "Template data is not valid JSON: line 3, column 3"
    )
    strict = client.post(
        "/zapier/creates/create_file",
        json={"template": invoice.id, "data": {}, "strict": True},
        headers=headers,
    )

    assert unknown.status_code == 404
    assert unknown.json["error"]["code"] == "template_not_found"
    assert strict.status_code == 422
    assert strict.json["error"]["message"].startswith(
        "The data has no value for a variable the template uses (line 1, column 15): 'number'"
    )


def test_searches_are_arrays_and_empty_when_nothing_matches(
    client, services, account, headers, invoice
):
    document = services.documents.create(
        account.id, NewDocument(template_id=invoice.id), Client.ZAPIER
    )

    by_name = client.get("/zapier/searches/find_template?name=invoice", headers=headers).json
    no_name = client.get("/zapier/searches/find_template?name=Letter", headers=headers).json
    by_id = client.get(f"/zapier/searches/find_document?id={document.id}", headers=headers).json
    no_id = client.get("/zapier/searches/find_document?id=doc_nope", headers=headers).json

    assert [t["id"] for t in by_name] == [invoice.id]
    assert no_name == [] and no_id == []
    assert [d["id"] for d in by_id] == [document.id]


def subscribe_to_documents(client, headers, receiver):
    """A Zap's New Document trigger turned on: a REST hook to the receiver."""
    return client.post(
        "/zapier/hooks",
        json={"target_url": receiver.url + "/zap", "event": "document.created"},
        headers=headers,
    )


def test_rest_hooks_subscribe_deliver_polling_shapes_and_unsubscribe(
    client, services, account, headers, receiver, invoice
) -> None:
    subscribed = subscribe_to_documents(client, headers, receiver)
    client.post("/zapier/creates/create_file", json={"template": invoice.id}, headers=headers)
    services.delivery.run_once()
    [delivered] = receiver.wait_for(1)
    polled = client.get("/zapier/triggers/new_document", headers=headers).json

    assert subscribed.status_code == 201 and subscribed.json["id"].startswith("hook_")
    assert delivered.json == polled[0]
    gone = client.delete(f"/zapier/hooks/{subscribed.json['id']}", headers=headers)
    assert gone.status_code == 200
    assert services.hooks.list(account.id) == []


def test_document_events_of_an_earlier_release_are_delivered_and_a_bad_one_holds_up_none(
    client, services, clock, account, headers, receiver
) -> None:
    hook = subscribe_to_documents(client, headers, receiver).json
    # As stored before documents named their missing scripts, and one no release would make.
    before = {
        "id": "doc_before",
        "template_id": None,
        "template_name": "Invoice",
        "format": "pdf",
        "file_url": None,
        "filename": "Invoice.pdf",
        "size": 1,
        "created_at": "2026-11-20T10:03:00Z",
        "expires_at": "2026-11-21T10:03:00Z",
    }
    with services.db.transaction() as session:
        events.record(session, account.id, EventType.DOCUMENT_CREATED, {"id": "doc_x"}, clock.now())
        events.record(session, account.id, EventType.DOCUMENT_CREATED, before, clock.now())

    services.delivery.run_once()

    [delivered] = receiver.wait_for(1)
    assert (delivered.json["id"], delivered.json["missing_scripts"]) == ("doc_before", [])
    outcomes = {
        d.status: d.attempts[0].error
        for d in services.hooks.deliveries(account.id, hook["id"], PageQuery()).data
    }
    assert outcomes == {"succeeded": None, "pending": UNTRANSLATABLE}


def test_only_instant_trigger_events_can_be_subscribed(client, headers, receiver) -> None:
    response = client.post(
        "/zapier/hooks",
        json={"target_url": receiver.url, "event": "template.updated"},
        headers=headers,
    )

    assert response.status_code == 400
    assert response.json["error"]["code"] == "event_not_offered"


def test_a_rolled_key_says_reconnect_in_zapiers_words(client, services, standard_key) -> None:
    services.keys.roll(None, standard_key.id)

    response = client.get("/zapier/me", headers=key_header(standard_key.value, ZAPIER))

    assert response.status_code == 401
    assert response.json["error"]["code"] == "api_key_rolled"
    assert response.json["error"]["message"] == (
        "This API key ('n8n workflows') was rolled on 2026-11-20 10:03 UTC. Reconnect your "
        "TemplateTo account in Zapier with the new key."
    )


def test_a_deleted_key_and_others_say_what_to_do(client, services, clock, standard_key) -> None:
    clock.advance(hours=1)
    services.keys.delete(None, standard_key.id)

    deleted = client.get("/zapier/me", headers=key_header(standard_key.value, ZAPIER)).json
    missing = client.get("/zapier/me").json

    assert deleted["error"]["message"].startswith(
        "This API key ('n8n workflows') was deleted on 2026-11-20 11:03 UTC."
    )
    assert missing["error"] == {
        "code": "api_key_missing",
        "message": "No API key was given. Reconnect your TemplateTo account in Zapier with a key "
        "from the API keys page.",
    }


def test_unknown_operations_are_404(client, headers) -> None:
    response = client.get("/zapier/triggers/nothing", headers=headers)

    assert response.status_code == 404
    assert response.json["error"]["code"] == "operation_not_found"


def test_old_value_used_trigger_lists_the_events(client, services, clock, account, headers):
    other = services.keys.create(account.id, "Zapier production")
    services.keys.roll(None, other.id, timedelta(0))
    client.get("/zapier/me", headers=key_header(other.value, ZAPIER))
    services.usage.flush()

    items = client.get("/zapier/triggers/old_value_used", headers=headers).json

    assert len(items) == 1
    assert items[0]["key_name"] == "Zapier production" and items[0]["client"] == "zapier"
    assert items[0]["failure_count"] == 1 and items[0]["id"].startswith("evt_")


def test_key_rotation_due_trigger_lists_the_events(client, services, clock, account, headers):
    other = services.keys.create(account.id, "Reporting")
    services.keys.set_rotate_by(account.id, other.id, clock.now() + timedelta(days=2))
    services.rotation.tell_due_keys()

    items = client.get("/zapier/triggers/key_rotation_due", headers=headers).json

    assert [(i["key_id"], i["key_name"], i["rotation"]) for i in items] == [
        (other.id, "Reporting", "due")
    ]
    assert items[0]["id"].startswith("evt_") and items[0]["hint"] == other.hint


def test_every_message_fits_whole_in_what_zapier_shows(
    client, services, account, standard_key, headers, invoice
) -> None:
    """Zapier shows 250 characters of a message: each is written to fit, advice included, at
    its longest (the longest names and IDs), and never cut."""
    value = standard_key.value
    rolled = services.keys.create(account.id, "R" * 100)  # names are at most 100 characters
    services.keys.roll(None, rolled.id)
    deleted = services.keys.create(account.id, "D" * 100)
    services.keys.delete(None, deleted.id)
    long_variable = services.templates.create(
        account.id, TemplateFields(name="Long", body="{{ " + "v" * 300 + " }}")
    )
    presented = [
        "",
        "{{bundle.authData.api_key}}",
        " " + value,
        f'"{value}"',
        "Bearer " + value,
        value[:-1],
        "tt_test_" + value[8:],
        value[:8] + "ä" * 38,
        value[:20] + ("A" if value[20] != "A" else "B") + value[21:],  # mistyped
        NewKeyValue.generate().value,  # never issued
        rolled.value,
        deleted.value,
    ]
    create = "/zapier/creates/create_file"
    answers = [client.get("/zapier/me")] + [
        client.get("/zapier/me", headers=key_header(shown, ZAPIER)) for shown in presented
    ]
    answers += [
        client.get("/zapier/searches/" + "x" * 300, headers=headers),
        client.post(create, json={"template": "tpl_" + "x" * 300}, headers=headers),
        client.post(
            create,
            json={
                "template": "",
                "advanced": "maybe",
                "preserve_line_breaks": "maybe",
                "document_type": "x" * 300,
                "strict": "maybe",
            },
            headers=headers,
        ),
        client.post(
            create,
            json={"template": invoice.id, "data": {"o" * 300: 1, "o" * 300 + ".n": 2}},
            headers=headers,
        ),
        client.post(
            create,
            json={"template": invoice.id, "advanced": True, "data": "[" * 300},
            headers=headers,
        ),
        client.post(create, json={"template": long_variable.id, "strict": True}, headers=headers),
        client.delete("/zapier/hooks/hook_" + "x" * 300, headers=headers),
        client.post(
            "/zapier/hooks",
            json={"target_url": "ftp://" + "x" * 300, "event": "document.created"},
            headers=headers,
        ),
    ]

    messages = [answer.json["error"]["message"] for answer in answers]
    assert [answer.status_code >= 400 for answer in answers] == [True] * len(answers)
    assert [m for m in messages if len(m) > 250 or not m.endswith(".")] == []


def test_name_value_data_with_dotted_names_fills_nested_variables(
    client, services, account, headers
) -> None:
    order = services.templates.create(
        account.id,
        TemplateFields(name="Order", body="{{ order.number }} for {{ order.customer.name }}"),
    )

    made = client.post(
        "/zapier/creates/create_file",
        json={
            "template": order.id,
            "data": {"order.number": "42", "order.customer.name": "Ada"},
            "document_type": "TXT",
        },
        headers=headers,
    )
    clash = client.post(
        "/zapier/creates/create_file",
        json={"template": order.id, "data": {"order": "42", "order.number": "42"}},
        headers=headers,
    )

    assert made.status_code == 200 and made.json["format"] == "txt"
    text = client.get("/files/" + made.json["file_url"].rsplit("/files/", 1)[1])
    assert text.get_data(as_text=True) == "42 for Ada\n"
    assert clash.status_code == 400
    assert clash.json["error"] == {
        "code": "template_data_names_clash",
        "message": "Template data has both 'order' and 'order.number': a name with dots fills a "
        "value inside another. Rename or remove one of them.",
    }


def test_zapier_inputs_blank_fields_and_bad_limits(client, headers, invoice) -> None:
    blank = client.post(
        "/zapier/creates/create_file",
        json={
            "template": invoice.id,
            "data": "",
            "preserve_line_breaks": "",
            "document_type": "",
            "strict": "false",
            "advanced": "",
        },
        headers=headers,
    )
    wrong = client.post(
        "/zapier/creates/create_file",
        json={"template": invoice.id, "document_type": "docx"},
        headers=headers,
    )
    unknown = client.post(
        "/zapier/creates/create_file", json={"template": "tpl_gone"}, headers=headers
    )
    bad_limit = client.get("/zapier/triggers/new_template?limit=abc", headers=headers)

    assert blank.status_code == 200 and blank.json["format"] == "pdf"
    assert wrong.status_code == 422
    assert wrong.json["error"]["message"] == "Document type must be 'pdf' or 'txt'."
    assert unknown.json["error"]["message"].startswith(
        "This template is not in your TemplateTo account"
    )
    assert bad_limit.status_code == 400
