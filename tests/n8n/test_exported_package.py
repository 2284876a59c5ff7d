"""The exported community node package, loaded unchanged by a real n8n 2.8.4 (see harness.py) and
run against a live bridge on 127.0.0.1: what an n8n workflow builder sees."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
import requests

from connector.templates import TemplateFields
from n8n_bridge.export import export

from ..helpers import key_header
from .harness import Execution, N8n, node_items, node_type

CREDENTIAL_TYPE = "templateToApi"


def credential(id: str, base_url: str, api_key: str) -> dict:
    return {
        "id": id,
        "name": f"TemplateTo {id}",
        "type": CREDENTIAL_TYPE,
        "data": {"baseUrl": base_url, "apiKey": api_key},
    }


def node(package: Path, name: str, node_name: str, credential_id: str, **parameters) -> dict:
    return {
        "id": name.lower().replace(" ", "-"),
        "name": name,
        "type": node_type(package, node_name),
        "typeVersion": 1,
        "position": [400, 0],
        "parameters": parameters,
        "credentials": {
            CREDENTIAL_TYPE: {"id": credential_id, "name": f"TemplateTo {credential_id}"}
        },
    }


def manual_workflow(id: str, *nodes: dict) -> dict:
    """A manual trigger feeding each node one empty item, side by side."""
    start = {
        "id": "start",
        "name": "Start",
        "type": "n8n-nodes-base.manualTrigger",
        "typeVersion": 1,
        "position": [0, 0],
        "parameters": {},
    }
    fan_out = [{"node": n["name"], "type": "main", "index": 0} for n in nodes]
    return {
        "id": id,
        "name": id,
        "active": False,
        "nodes": [start, *nodes],
        "connections": {"Start": {"main": [fan_out]}},
        "settings": {"executionOrder": "v1"},
    }


def binary_of(run: Execution, node_name: str, home: Path) -> tuple[dict, bytes]:
    [item] = run.data["data"]["resultData"]["runData"][node_name][0]["data"]["main"][0]
    binary = item["binary"]["data"]
    if binary.get("id"):  # kept on disk: "filesystem-v2:<path under storage>"
        path = binary["id"].split(":", 1)[1]
        return binary, (home / ".n8n" / "storage" / path).read_bytes()
    return binary, base64.b64decode(binary["data"])


@pytest.fixture
def package(tmp_path: Path) -> Path:
    directory = tmp_path / "n8n-nodes-templateto"
    export(directory)
    return directory


@pytest.fixture
def invoice(services, account):
    return services.templates.create(
        account.id,
        TemplateFields(name="Invoice", body="<p>Invoice {{ number }}</p><p>{{ note }}</p>"),
    )


@pytest.fixture
def changed_keys(services, account):
    """A rolled key ('n8n production') and a deleted one ('n8n staging'), with their values."""
    rolled = services.keys.create(account.id, "n8n production")
    services.keys.roll(None, rolled.id)
    deleted = services.keys.create(account.id, "n8n staging")
    services.keys.delete(None, deleted.id)
    return rolled, deleted


def failures(services, key_id: str, timeout: float = 10.0) -> dict[str, int]:
    """The key's failure report once the server has written it (it flushes within ~2 s)."""
    deadline = time.monotonic() + timeout
    while not (reports := services.keys.failures(None, key_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return {report.client: report.count for report in reports}


def test_node_operations_and_errors_in_workflow_runs(
    n8n, package, start_server, services, account, standard_key, invoice, changed_keys
) -> None:
    server = start_server()
    rolled, deleted = changed_keys
    runtime: N8n = n8n(package)
    for id, value in (
        ("good", standard_key.value),
        ("rolled", rolled.value),
        ("deleted", deleted.value),
    ):
        runtime.import_credential(credential(id, server.url, value))

    def templateto(name: str, credential_id: str = "good", **parameters) -> dict:
        return node(package, name, "templateTo", credential_id, **parameters)

    list_all = {"resource": "template", "operation": "getAll", "returnAll": True}
    create = {"resource": "document", "operation": "create"}
    runtime.import_workflow(
        manual_workflow(
            "actions",
            templateto("List", **list_all),
            templateto("PDF", **create, template_id=invoice.id, format="pdf", data='{"n": 1}'),
            templateto(
                "TXT",
                **create,
                template_id=invoice.id,
                format="txt",
                data='{"number": 43, "note": "line one\\nline two"}',
                preserve_line_breaks=True,
            ),
        )
    )
    runtime.import_workflow(
        manual_workflow("unknown", templateto("Render", **create, template_id="tpl_nope"))
    )
    runtime.import_workflow(manual_workflow("rolled", templateto("List", "rolled", **list_all)))
    runtime.import_workflow(manual_workflow("deleted", templateto("List", "deleted", **list_all)))

    run = runtime.execute("actions")
    unknown = runtime.execute("unknown")
    after_roll = runtime.execute("rolled")
    after_delete = runtime.execute("deleted")

    assert run.ok, run.report
    assert [t["name"] for t in run.items("List")] == ["Invoice"]
    [pdf] = run.items("PDF")
    pdf_binary, pdf_bytes = binary_of(run, "PDF", runtime.home)
    assert pdf["filename"] == "Invoice.pdf" and pdf["id"].startswith("doc_")
    assert pdf_binary["fileName"] == "Invoice.pdf"
    assert pdf_binary["mimeType"] == "application/pdf"
    assert pdf_bytes.startswith(b"%PDF") and len(pdf_bytes) == pdf["size"]
    txt_binary, txt_bytes = binary_of(run, "TXT", runtime.home)
    assert txt_binary["fileName"] == "Invoice.txt"
    assert "Invoice 43" in txt_bytes.decode() and "line one\nline two" in txt_bytes.decode()

    assert not unknown.ok
    assert unknown.error["message"] == "The resource you are requesting could not be found"
    assert unknown.error["description"] == (
        "There is no template 'tpl_nope' in this TemplateTo account (it may have been deleted). "
        "Choose one from the node's Template list."
    )
    assert not after_roll.ok
    assert after_roll.error["message"] == "Authorization failed - please check your credentials"
    assert after_roll.error["description"] == (
        "The API key 'n8n production' was rolled on 2026-11-20 10:03 UTC: this value no longer "
        "works. Update the TemplateTo credential in n8n with the key's new value."
    )
    assert not after_delete.ok
    assert after_delete.error["description"] == (
        "The API key 'n8n staging' was deleted on 2026-11-20 10:03 UTC. Create a new key on the "
        "API keys page and update the TemplateTo credential in n8n with it."
    )
    # n8n sent each refused request twice (its automatic repeat); each counts as one failure.
    refused = [
        line
        for line in map(json.loads, server.log().splitlines())
        if line.get("path") == "/n8n/templates" and line.get("status") == 401
    ]
    assert len(refused) == 4
    assert failures(services, rolled.id) == {"n8n": 1}


def test_credential_test_dropdown_and_trigger_lifecycle(
    n8n, package, start_server, services, account, standard_key, invoice, changed_keys
) -> None:
    server = start_server()
    rolled, deleted = changed_keys
    runtime: N8n = n8n(package)
    credentials = {
        name: credential(name, server.url, value)
        for name, value in (
            ("good", standard_key.value),
            ("unknown", "tt_live_" + "A" * 38),
            ("rolled", rolled.value),
            ("deleted", deleted.value),
        )
    }
    for each in credentials.values():
        runtime.import_credential(each)
    trigger = node(
        package, "TemplateTo Trigger", "templateToTrigger", "good", event="document.created"
    )
    trigger["webhookId"] = "6f1c2a8e-6c4e-4f59-9a51-3c1f1e2d7a10"
    runtime.import_workflow(
        {
            "id": "trigger",
            "name": "trigger",
            "active": False,
            "nodes": [trigger],
            "connections": {},
            "settings": {"executionOrder": "v1"},
        }
    )

    def n8n_hooks() -> list[dict]:
        return requests.get(
            server.url + "/n8n/hooks", headers=key_header(standard_key.value), timeout=10
        ).json()["hooks"]

    with runtime.running() as n8n_server:
        tested = {name: n8n_server.test_credential(each) for name, each in credentials.items()}
        options = n8n_server.load_options(
            node_type(package, "templateTo"),
            "template_id",
            credentials["good"],
            {"resource": "document", "operation": "create"},
        )
        n8n_server.activate("trigger")
        [subscription] = n8n_hooks()

    assert tested["good"] == {"status": "OK", "message": "Connection successful!"}
    assert {name: result["status"] for name, result in tested.items()} == {
        "good": "OK",
        "unknown": "Error",
        "rolled": "Error",
        "deleted": "Error",
    }
    # One status per failure class: the only signal n8n's credential screen shows.
    assert len({tested[name]["message"] for name in ("unknown", "rolled", "deleted")}) == 3
    assert options == [{"name": "Invoice", "value": invoice.id}]
    assert subscription["event"] == "document.created"
    assert subscription["target_url"].endswith(
        "/webhook/6f1c2a8e-6c4e-4f59-9a51-3c1f1e2d7a10/webhook"
    )

    with runtime.running() as n8n_server:
        assert n8n_hooks() == [subscription]  # a restart creates no duplicate
        created = requests.post(
            server.url + "/v1/documents",
            json={"template_id": invoice.id, "data": {"number": 7}},
            headers=key_header(standard_key.value),
            timeout=30,
        ).json()
        [execution] = n8n_server.executions("trigger", count=1, timeout=30)
        forged = requests.post(
            subscription["target_url"],
            json={"id": "evt_forged", "type": "document.created", "data": {}},
            headers={
                "webhook-id": "msg_forged",
                "webhook-timestamp": str(int(time.time())),
                "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode(),
            },
            timeout=10,
        )
        unsigned = requests.post(subscription["target_url"], json={"id": "evt_x"}, timeout=10)
        time.sleep(1)
        executions_after_forgeries = len(n8n_server.executions("trigger"))
        n8n_server.deactivate("trigger")
        remaining = n8n_hooks()

    assert execution["status"] == "success"
    [delivered] = node_items(execution, "TemplateTo Trigger")
    assert delivered["type"] == "document.created" and delivered["id"].startswith("evt_")
    assert delivered["data"]["id"] == created["id"]
    assert delivered["data"]["file_url"] == created["file_url"]
    assert forged.status_code == 401 and unsigned.status_code == 401
    assert executions_after_forgeries == 1  # neither started the workflow
    assert remaining == []
