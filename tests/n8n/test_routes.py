"""The /n8n routes answer in the shapes the TemplateTo community node relies on."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from connector.audit import AuditAction
from connector.clients import Client
from connector.documents import NewDocument
from connector.paging import PageQuery
from connector.templates import TemplateFields

from ..helpers import key_header, pdf_producer

N8N = "n8n"


@pytest.fixture
def headers(standard_key) -> dict[str, str]:
    return key_header(standard_key.value, N8N)


@pytest.fixture
def invoice(services, account):
    return services.templates.create(
        account.id,
        TemplateFields(name="Facture Łódź", body="<p>Invoice {{ number }}</p>{{ note }}"),
    )


def test_credential_test_names_the_account_and_key(client, headers, standard_key) -> None:
    me = client.get("/n8n/me", headers=headers)

    assert me.status_code == 200
    assert me.json == {
        "account_id": me.json["account_id"],
        "account_name": "Acme Ltd",
        "key_id": standard_key.id,
        "key_name": "n8n workflows",
        "key_hint": standard_key.hint,
        "label": "Acme Ltd · n8n workflows",
        "in_grace_period": False,
        "grace_until": None,
        "warning": None,
    }


def test_credential_test_warns_that_a_grace_period_value_stops_working(
    client, services, account
) -> None:
    key = services.keys.create(account.id, "n8n production")
    services.keys.roll(None, key.id, timedelta(hours=1))

    me = client.get("/n8n/me", headers=key_header(key.value, N8N))

    assert me.status_code == 200
    assert me.json["in_grace_period"] is True
    assert me.json["warning"] == (
        "This value still works, until 2026-11-20 11:03 UTC only: the API key 'n8n production' "
        "was rolled. Paste the key's new value here before then."
    )


def test_credential_test_has_a_status_per_failure_class(
    client, services, account, standard_key
) -> None:
    rolled = services.keys.create(account.id, "Rolled")
    services.keys.roll(None, rolled.id)
    deleted = services.keys.create(account.id, "Deleted")
    services.keys.delete(None, deleted.id)
    mistyped = standard_key.value[:-1] + ("A" if standard_key.value[-1] != "A" else "B")

    def status(value: str | None) -> int:
        headers = key_header(value, N8N) if value is not None else {"User-Agent": N8N}
        return client.get("/n8n/me", headers=headers).status_code

    assert status(standard_key.value) == 200
    assert status(None) == 401
    assert status(mistyped) == 401
    assert status("tt_live_" + "x" * 38) == 401
    assert status(rolled.value) == 403
    assert status(deleted.value) == 410


def test_templates_are_wrapped_paged_newest_first(client, services, clock, account, headers):
    assert client.get("/n8n/templates", headers=headers).json == {
        "templates": [],
        "next_cursor": None,
    }
    for name in ("First", "Second", "Third"):
        services.templates.create(account.id, TemplateFields(name=name, body="{{ x }}"))
        clock.advance(seconds=1)

    first = client.get("/n8n/templates?limit=2", headers=headers).json
    rest = client.get(f"/n8n/templates?limit=2&cursor={first['next_cursor']}", headers=headers)
    one = client.get(f"/n8n/templates/{first['templates'][0]['id']}", headers=headers).json

    assert [t["name"] for t in first["templates"]] == ["Third", "Second"]
    assert rest.json == {"templates": [rest.json["templates"][0]], "next_cursor": None}
    assert rest.json["templates"][0]["name"] == "First"
    assert one == first["templates"][0]
    assert set(one) == {"id", "name", "variables", "created_at"} and one["variables"] == ["x"]


def test_create_file_takes_the_engine(client, headers, invoice) -> None:
    weasy = client.post(
        "/n8n/documents",
        json={"template_id": invoice.id, "engine": "weasyprint"},
        headers=headers,
    )
    unknown = client.post(
        "/n8n/documents", json={"template_id": invoice.id, "engine": "word"}, headers=headers
    )

    assert pdf_producer(weasy.data).startswith("WeasyPrint")
    assert unknown.status_code == 422 and "engine" in unknown.json["message"], unknown.json


def test_create_file_names_the_scripts_the_engine_could_not_draw(
    client, headers, services, account
) -> None:
    greeting = services.templates.create(
        account.id, TemplateFields(name="Greeting", body="<p>{{ text }}</p>")
    )

    def create(**engine: str) -> dict:
        body = {"template_id": greeting.id, "data": {"text": "こんにちは 東京"}, **engine}
        return json.loads(
            client.post("/n8n/documents", json=body, headers=headers).headers["X-Document"]
        )

    assert create()["missing_scripts"] == ["Han", "Hiragana"]
    assert create(engine="weasyprint")["missing_scripts"] == []


def test_render_answers_the_file_with_its_name_and_record(client, clock, headers, invoice):
    pdf = client.post(
        "/n8n/documents",
        json={"template_id": invoice.id, "data": {"number": "42"}},
        headers=headers,
    )
    clock.advance(seconds=1)
    txt = client.post(
        "/n8n/documents",
        json={
            "template_id": invoice.id,
            "format": "txt",
            "data": '{"number": "43", "note": "a\\nb"}',
            "preserve_line_breaks": True,
        },
        headers=headers,
    )

    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert pdf.mimetype == "application/pdf"
    record = json.loads(pdf.headers["X-Document"])
    assert record["filename"] == "Facture Łódź.pdf" and record["size"] == len(pdf.data)
    assert record["template_name"] == "Facture Łódź" and record["id"].startswith("doc_")
    assert (
        "filename*=UTF-8''Facture%20%C5%81%C3%B3d%C5%BA.pdf" in (pdf.headers["Content-Disposition"])
    )
    assert txt.mimetype == "text/plain" and "Invoice 43" in txt.text
    listed = client.get("/n8n/documents", headers=headers).json
    assert [d["id"] for d in listed["documents"]] == [
        json.loads(txt.headers["X-Document"])["id"],
        record["id"],
    ]
    got = client.get(f"/n8n/documents/{record['id']}", headers=headers).json
    assert got["id"] == record["id"] and got["file_url"].startswith("http")


def test_render_errors_carry_a_top_level_message(client, headers, invoice) -> None:
    bad_json = client.post(
        "/n8n/documents",
        json={"template_id": invoice.id, "data": '{\n  "number": 4,\n    oops}'},
        headers=headers,
    )
    unknown = client.post("/n8n/documents", json={"template_id": "tpl_nope"}, headers=headers)
    strict = client.post(
        "/n8n/documents", json={"template_id": invoice.id, "strict": True}, headers=headers
    )
    invalid = client.post("/n8n/documents", json={"format": "docx"}, headers=headers)

    assert bad_json.status_code == 400
    assert bad_json.json["message"].startswith("Template data is not valid JSON: line 3, column 5")
    assert bad_json.json["error"]["code"] == "template_data_invalid_json"
    assert unknown.status_code == 404
    assert unknown.json["message"] == (
        "There is no template 'tpl_nope' in this TemplateTo account (it may have been deleted). "
        "Choose one from the node's Template list."
    )
    assert strict.status_code == 422 and "number" in strict.json["message"]
    assert invalid.status_code == 422
    assert "template_id" in invalid.json["message"] and "format" in invalid.json["message"]
    assert invalid.json["error"]["code"] == "validation_failed"


def test_unknown_document_is_404_with_a_message(client, headers) -> None:
    response = client.get("/n8n/documents/doc_nope", headers=headers)

    assert response.status_code == 404
    assert response.json["error"]["code"] == "document_not_found"
    assert "doc_nope" in response.json["message"]


def test_events_are_wrapped_and_filtered_by_type(client, clock, headers, invoice) -> None:
    clock.advance(seconds=1)
    client.post("/n8n/documents", json={"template_id": invoice.id}, headers=headers)

    everything = client.get("/n8n/events", headers=headers).json
    documents = client.get("/n8n/events?type=document.created", headers=headers).json

    assert everything["events"][0]["type"] == "document.created"
    assert {e["type"] for e in everything["events"]} == {
        "document.created",
        "template.created",
        "api_key.created",
    }
    assert [e["type"] for e in documents["events"]] == ["document.created"]
    assert set(documents["events"][0]) == {"id", "type", "created_at", "data"}


def test_rolled_and_deleted_keys_say_which_key_and_update_the_credential(
    client, services, clock, account
) -> None:
    rolled = services.keys.create(account.id, "n8n production")
    services.keys.roll(None, rolled.id)
    clock.advance(hours=1)
    deleted = services.keys.create(account.id, "n8n staging")
    services.keys.delete(None, deleted.id)

    after_roll = client.get("/n8n/templates", headers=key_header(rolled.value, N8N))
    after_delete = client.get("/n8n/templates", headers=key_header(deleted.value, N8N))
    without = client.get("/n8n/templates", headers={"User-Agent": N8N})

    assert after_roll.status_code == 401
    assert after_roll.json["message"] == (
        "The API key 'n8n production' was rolled on 2026-11-20 10:03 UTC: this value no longer "
        "works. Update the TemplateTo credential in n8n with the key's new value."
    )
    assert after_roll.json["error"]["code"] == "api_key_rolled"
    assert after_delete.status_code == 401
    assert after_delete.json["message"] == (
        "The API key 'n8n staging' was deleted on 2026-11-20 11:03 UTC. Create a new key on "
        "the API keys page and update the TemplateTo credential in n8n with it."
    )
    assert without.status_code == 401
    assert without.json["message"].endswith("Then update the TemplateTo credential in n8n.")


def test_n8ns_repeated_401_counts_as_one_failure(client, services, account) -> None:
    old = services.keys.create(account.id, "n8n production")
    services.keys.roll(None, old.id)

    for _ in range(2):  # n8n's request, and its automatic repeat
        client.get("/n8n/templates", headers=key_header(old.value, N8N))
    for _ in range(2):  # a client that does not repeat: two attempts
        client.get("/n8n/templates", headers=key_header(old.value, "curl/8"))
    for _ in range(2):  # n8n's next attempt, repeated
        client.get("/n8n/templates", headers=key_header(old.value, N8N))
    services.usage.flush()

    reports = services.keys.failures(account.id, old.id)
    assert {report.client: report.count for report in reports} == {"n8n": 2, "other": 2}


def test_trigger_lifecycle_list_create_deliver_delete(
    client, services, account, headers, receiver, invoice
) -> None:
    target = receiver.url + "/webhook/6f1c/webhook"
    created = client.post(
        "/n8n/hooks", json={"target_url": target, "event": "document.created"}, headers=headers
    )
    listed = client.get("/n8n/hooks", headers=headers).json
    client.post("/n8n/documents", json={"template_id": invoice.id}, headers=headers)
    services.delivery.run_once()
    [delivered] = receiver.wait_for(1)
    polled = client.get("/n8n/events?type=document.created", headers=headers).json
    deleted = client.delete(f"/n8n/hooks/{created.json['id']}", headers=headers)
    again = client.delete(f"/n8n/hooks/{created.json['id']}", headers=headers)

    assert created.status_code == 201
    assert created.json["secret"].startswith("whsec_")
    assert listed == {
        "hooks": [
            {
                "id": created.json["id"],
                "target_url": target,
                "event": "document.created",
                "created_at": created.json["created_at"],
            }
        ]
    }
    assert delivered.json == polled["events"][0]
    assert delivered.json["data"]["file_url"].startswith("http")
    assert deleted.status_code == 204 and deleted.data == b""
    assert again.status_code == 404 and "message" in again.json
    assert client.get("/n8n/hooks", headers=headers).json == {"hooks": []}


def test_hooks_of_other_platforms_are_not_listed(client, headers, hook) -> None:
    assert client.get("/n8n/hooks", headers=headers).json == {"hooks": []}


@pytest.mark.parametrize(
    "event",
    [
        "template.created",
        "api_key.rolled",
        "api_key.deleted",
        "api_key.old_value_used",
        "api_key.rotation_due",
    ],
)
def test_the_trigger_events_can_be_subscribed(client, headers, receiver, event) -> None:
    response = client.post(
        "/n8n/hooks", json={"target_url": receiver.url, "event": event}, headers=headers
    )

    assert response.status_code == 201 and response.json["event"] == event


def test_other_events_are_refused_with_the_choices(client, headers, receiver) -> None:
    response = client.post(
        "/n8n/hooks",
        json={"target_url": receiver.url, "event": "template.updated"},
        headers=headers,
    )

    assert response.status_code == 400
    assert response.json["error"]["code"] == "event_not_offered"
    assert "document.created" in response.json["message"]


def test_subscriptions_n8n_forgot_are_removed_after_answering_404(
    client, services, clock, account, standard_key, headers, receiver, invoice
) -> None:
    """The key was rolled before the workflow was deactivated: n8n could not unsubscribe, and
    its webhook URL now answers 404. A restarting n8n answers 404 only for a moment."""
    client.post(
        "/n8n/hooks",
        json={"target_url": receiver.url + "/webhook/x/webhook", "event": "document.created"},
        headers=headers,
    )
    services.keys.roll(None, standard_key.id)
    receiver.answer = lambda _: 404
    services.documents.create(account.id, NewDocument(template_id=invoice.id), Client.N8N)

    services.delivery.run_once()
    clock.advance(seconds=6)
    services.delivery.run_once()
    assert len(services.hooks.list(account.id)) == 1  # a moment of 404s is not enough

    clock.advance(minutes=6)
    services.delivery.run_once()
    assert services.hooks.list(account.id) == []
    [removed] = services.audit.list(account.id, PageQuery(), action=AuditAction.HOOK_DELETED).data
    assert (removed.actor, removed.detail["receiver_status"]) == ("service", 404)


def test_other_platforms_keep_subscriptions_that_answer_404(
    services, clock, account, hook, receiver
) -> None:
    receiver.answer = lambda _: 404
    services.templates.create(account.id, TemplateFields(name="A", body="a"))
    for wait in (6, 360, 2_000):
        services.delivery.run_once()
        clock.advance(seconds=wait)

    assert [h.id for h in services.hooks.list(account.id)] == [hook.id]


def test_a_grace_period_value_works_with_its_warning(client, services, account) -> None:
    key = services.keys.create(account.id, "n8n production")
    services.keys.roll(None, key.id, timedelta(hours=1))

    response = client.get("/n8n/templates", headers=key_header(key.value, N8N))

    assert response.status_code == 200
    assert "X-Api-Key-Warning" in response.headers
