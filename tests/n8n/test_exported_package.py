"""The exported community node package, loaded unchanged by a real n8n 2.8.4 (see harness.py) and
run against a live bridge on 127.0.0.1: what an n8n workflow builder sees."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from connector import keys
from connector.clock import format_time
from connector.templates import TemplateFields
from n8n_bridge.export import export

from ..helpers import key_header, pdf_producer
from .harness import NOWHERE, Execution, N8n, node_items, node_subtitle, node_type

# Each test starts n8n (a command ~3 s, a server ~10 s) several times.
pytestmark = pytest.mark.timeout(600)
CREDENTIAL_TYPE = "templateToApi"
DOCS = Path(__file__).parents[2] / "docs" / "n8n.md"


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


def core_node(name: str, type: str, version: float, **parameters) -> dict:
    return {
        "id": name.lower().replace(" ", "-"),
        "name": name,
        "type": f"n8n-nodes-base.{type}",
        "typeVersion": version,
        "position": [200, 0],
        "parameters": parameters,
    }


START = core_node("Start", "manualTrigger", 1)


def workflow(id: str, nodes: list[dict], edges: list[tuple[str, str] | tuple[str, str, int]]):
    """Nodes joined by (from, to) or (from, to, from's output) edges; runs from a manual start."""
    connections: dict[str, dict] = {}
    for source, target, *output in edges:
        outputs = connections.setdefault(source, {"main": []})["main"]
        index = output[0] if output else 0
        outputs.extend([] for _ in range(index + 1 - len(outputs)))
        outputs[index].append({"node": target, "type": "main", "index": 0})
    return {
        "id": id,
        "name": id,
        "active": False,
        "nodes": nodes,
        "connections": connections,
        "settings": {"executionOrder": "v1"},
    }


def manual_workflow(id: str, *nodes: dict) -> dict:
    """A manual trigger feeding each node one empty item, side by side."""
    return workflow(id, [START, *nodes], [("Start", n["name"]) for n in nodes])


def items_from(name: str, *items: dict) -> list[dict]:
    """Nodes that turn the start's empty item into ``items`` (a Set, then a Split Out)."""
    return [
        core_node(f"{name} list", "set", 3.4, mode="raw", jsonOutput=json.dumps({"items": items})),
        core_node(name, "splitOut", 1, fieldToSplitOut="items"),
    ]


def assignments(name: str, **values: str) -> dict:
    """A Set node whose output items are exactly ``values`` (expressions)."""
    fields = [
        {"id": key, "name": key, "value": value, "type": "string"} for key, value in values.items()
    ]
    return core_node(name, "set", 3.4, mode="manual", assignments={"assignments": fields})


def binary_of(run: Execution, node_name: str, home: Path) -> list[tuple[dict, bytes]]:
    """Each output item's binary fields: (n8n's record of the file, its bytes), in item order."""
    files = []
    for item in run.data["data"]["resultData"]["runData"][node_name][0]["data"]["main"][0]:
        for binary in item["binary"].values():
            if binary.get("id"):  # kept on disk: "filesystem-v2:<path under storage>"
                path = binary["id"].split(":", 1)[1]
                files.append((binary, (home / ".n8n" / "storage" / path).read_bytes()))
            else:
                files.append((binary, base64.b64decode(binary["data"])))
    return files


def paired_with(run: Execution, node_name: str, output: int = 0) -> list[int]:
    """The input item each of the node's output items says it came from."""
    run_data = run.data["data"]["resultData"]["runData"][node_name][0]["data"]["main"][output]
    return [item["pairedItem"]["item"] for item in run_data]


@pytest.fixture
def package(tmp_path: Path) -> Path:
    directory = tmp_path / "n8n-nodes-templateto"
    export(directory, "https://bridge.example.com")
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


def documented_install() -> str:
    """The install commands docs/n8n.md gives under "Connecting"."""
    connecting = DOCS.read_text().split("## Connecting", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", connecting, re.S)
    [commands] = [block for block in blocks if "npm install" in block]
    return commands


def test_the_documented_install_works_on_node_20_and_n8n_loads_the_package(
    n8n, tmp_path, start_server, standard_key, services, account
) -> None:
    """docs/n8n.md's commands, run as written from an empty directory with ~ as n8n's home."""
    server = start_server()
    home = tmp_path / "n8n-home"
    work = tmp_path / "work"
    work.mkdir()
    commands = documented_install()
    tarball = re.search(r"npm install (\S+\.tgz)", commands)[1]
    assert tarball.startswith("/path/to/")
    environment = {
        **os.environ,
        "HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        # Offline: npm may only look (and fail at once) for the optional n8n-workflow.
        "npm_config_registry": NOWHERE,
        "npm_config_fetch_retries": "0",
        "npm_config_cache": str(tmp_path / "npm-cache"),
        "npm_config_update_notifier": "false",
    }
    installed = subprocess.run(
        ["bash", "-ec", commands.replace("/path/to/", f"{work}/")],
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    nodes = home / ".n8n" / "nodes" / "node_modules"
    # No second n8n-workflow beside n8n's own: the package uses the one n8n provides.
    assert sorted(path.name for path in nodes.iterdir() if not path.name.startswith(".")) == [
        "n8n-nodes-templateto"
    ]
    package = nodes / "n8n-nodes-templateto"
    manifest = json.loads((package / "package.json").read_text())
    assert manifest["peerDependenciesMeta"] == {"n8n-workflow": {"optional": True}}
    assert "npm install" in (package / "README.md").read_text()
    for number in range(3):
        services.templates.create(
            account.id, TemplateFields(name=f"Letter {number}", body="{{ x }}")
        )
    runtime: N8n = n8n(package, home=home)
    runtime.import_credential(credential("good", server.url, standard_key.value))
    runtime.import_workflow(
        manual_workflow(
            "list",
            node(package, "List", "templateTo", "good", resource="template", operation="getAll"),
        )
    )

    run = runtime.execute("list")
    with runtime.running() as n8n_server:
        types = n8n_server.node_types()

    assert run.ok, run.report
    assert sorted(t["name"] for t in run.items("List")) == ["Letter 0", "Letter 1", "Letter 2"]
    described = types[node_type(package, "templateTo")]
    assert described["codex"] == {
        "categories": ["Productivity"],
        "resources": {
            "primaryDocumentation": [{"url": "https://bridge.example.com/generate/api-keys"}],
            "credentialDocumentation": [{"url": "https://bridge.example.com/generate/api-keys"}],
        },
    }
    # usableAsTool: n8n offers the node to its AI agents as a tool too.
    assert types[node_type(package, "templateToTool")]["displayName"] == "TemplateTo Tool"


def test_runs_pair_every_item_and_keep_the_services_words(
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
    runtime.import_credential(credential("nowhere", NOWHERE, standard_key.value))

    def templateto(name: str, credential_id: str = "good", **parameters) -> dict:
        return node(package, name, "templateTo", credential_id, **parameters)

    list_all = {"resource": "template", "operation": "getAll", "returnAll": True}
    create = {"resource": "document", "operation": "create"}
    by_id = {"__rl": True, "mode": "id", "value": invoice.id}
    runtime.import_workflow(
        manual_workflow(
            "actions",
            templateto("List", **list_all),
            templateto(
                "PDF",
                **create,
                template_id=by_id,
                format="pdf",
                data='{"n": 1}',
                engine="weasyprint",
            ),
            templateto(
                "TXT",
                **create,
                template_id=by_id,
                format="txt",
                data='{"number": 43, "note": "line one\\nline two"}',
                preserve_line_breaks=True,
                binaryPropertyName="invoice",
            ),
        )
    )
    unknown = {"__rl": True, "mode": "id", "value": "tpl_nope"}
    runtime.import_workflow(
        manual_workflow("unknown", templateto("Render", **create, template_id=unknown))
    )
    runtime.import_workflow(manual_workflow("rolled", templateto("List", "rolled", **list_all)))
    runtime.import_workflow(manual_workflow("deleted", templateto("List", "deleted", **list_all)))

    # Three items, the middle one naming no template; each step reads its item's source.
    sources = items_from(
        "Sources",
        {"label": "first", "template": invoice.id},
        {"label": "second", "template": "tpl_nope"},
        {"label": "third", "template": invoice.id},
    )
    get_each = {
        "resource": "template",
        "operation": "get",
        "id": {"__rl": True, "mode": "id", "value": "={{ $json.template }}"},
    }
    error_output = templateto("Get", **get_each) | {"onError": "continueErrorOutput"}
    runtime.import_workflow(
        workflow(
            "error-output",
            [
                START,
                *sources,
                error_output,
                assignments("Found", source="={{ $('Sources').item.json.label }}"),
                assignments(
                    "Failed",
                    source="={{ $('Sources').item.json.label }}",
                    code="={{ $json.error.code }}",
                    message="={{ $json.message }}",
                ),
            ],
            [
                ("Start", "Sources list"),
                ("Sources list", "Sources"),
                ("Sources", "Get"),
                ("Get", "Found", 0),
                ("Get", "Failed", 1),
            ],
        )
    )
    regular_output = templateto("Get", **get_each) | {"onError": "continueRegularOutput"}
    listing = templateto("List", resource="template", operation="getAll", limit=10)
    unreachable = templateto("Unreachable", "nowhere", **list_all)
    runtime.import_workflow(
        workflow(
            "regular-output",
            [
                START,
                *sources,
                regular_output,
                listing,
                assignments("Listed", source="={{ $('Sources').item.json.label }}"),
                unreachable | {"onError": "continueRegularOutput"},
            ],
            [
                ("Start", "Sources list"),
                ("Start", "Unreachable"),
                ("Sources list", "Sources"),
                ("Sources", "Get"),
                ("Sources", "List"),
                ("List", "Listed"),
            ],
        )
    )

    run = runtime.execute("actions")
    not_found = runtime.execute("unknown")
    after_roll = runtime.execute("rolled")
    after_delete = runtime.execute("deleted")
    errors_apart = runtime.execute("error-output")
    errors_inline = runtime.execute("regular-output")

    assert run.ok, run.report
    assert [t["name"] for t in run.items("List")] == ["Invoice"]
    [pdf] = run.items("PDF")
    [(pdf_binary, pdf_bytes)] = binary_of(run, "PDF", runtime.home)
    assert pdf["filename"] == "Invoice.pdf" and pdf["id"].startswith("doc_")
    assert pdf_binary["fileName"] == f"Invoice-{pdf['id']}.pdf"
    assert pdf_binary["mimeType"] == "application/pdf"
    assert pdf_bytes.startswith(b"%PDF") and len(pdf_bytes) == pdf["size"]
    assert pdf_producer(pdf_bytes).startswith("WeasyPrint")  # the engine chosen in the node
    [txt] = run.items("TXT")
    [txt_item] = run.data["data"]["resultData"]["runData"]["TXT"][0]["data"]["main"][0]
    assert list(txt_item["binary"]) == ["invoice"]  # the field the node was told to use
    [(txt_binary, txt_bytes)] = binary_of(run, "TXT", runtime.home)
    assert txt_binary["fileName"] == f"Invoice-{txt['id']}.txt"
    assert "Invoice 43" in txt_bytes.decode() and "line one\nline two" in txt_bytes.decode()

    assert not not_found.ok
    assert not_found.error["message"] == "The resource you are requesting could not be found"
    assert not_found.error["description"] == (
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

    # "On Error: Continue (using error output)": the failed item goes to the error output with
    # the service's message and code, and every item still knows its source.
    assert errors_apart.ok, errors_apart.report
    assert paired_with(errors_apart, "Get", 0) == [0, 2]
    assert paired_with(errors_apart, "Get", 1) == [1]
    assert errors_apart.items("Found") == [{"source": "first"}, {"source": "third"}]
    no_such_template = (
        "There is no template 'tpl_nope' in this TemplateTo account (it may have been deleted). "
        "Choose one from the node's Template list."
    )
    [sent_apart] = errors_apart.items("Get", output=1)
    assert sent_apart == {  # merged, as n8n does, with the input item's fields
        "label": "second",
        "template": "tpl_nope",
        "message": no_such_template,
        "error": {
            "code": "template_not_found",
            "message": no_such_template,
            "details": {"template_id": "tpl_nope"},
        },
    }
    assert errors_apart.items("Failed") == [
        {"source": "second", "code": "template_not_found", "message": no_such_template}
    ]
    # "On Error: Continue": the failed item stays in line, holding the service's answer; and a
    # list's items are paired with the input item they were listed for.
    assert errors_inline.ok, errors_inline.report
    assert paired_with(errors_inline, "Get") == [0, 1, 2]
    [first, failed, third] = errors_inline.items("Get")
    assert first["id"] == third["id"] == invoice.id
    assert failed == {
        "message": no_such_template,
        "error": {
            "code": "template_not_found",
            "message": no_such_template,
            "details": {"template_id": "tpl_nope"},
        },
    }
    assert paired_with(errors_inline, "List") == [0, 1, 2]
    # Not the service's answer: no code, n8n's words.
    [not_reached] = errors_inline.items("Unreachable")
    assert list(not_reached) == ["message", "error"] and list(not_reached["error"]) == ["message"]
    assert "refused the connection" in not_reached["message"]
    assert errors_inline.items("Listed") == [
        {"source": "first"},
        {"source": "second"},
        {"source": "third"},
    ]


def test_credential_test_template_list_and_trigger_lifecycle(
    n8n, package, start_server, services, account, standard_key, invoice, changed_keys, clock
) -> None:
    server = start_server()
    rolled, deleted = changed_keys
    # A grace period the live server (on the real clock) is still in.
    clock.current = datetime.now(UTC)
    in_grace = services.keys.create(account.id, "n8n staging 2")
    services.keys.roll(None, in_grace.id, timedelta(hours=1))
    grace_ends = format_time(clock.current + timedelta(hours=1))
    mistyped = standard_key.value[:-1] + ("A" if standard_key.value[-1] != "A" else "B")
    runtime: N8n = n8n(package)
    credentials = {
        name: credential(name, server.url, value)
        for name, value in (
            ("good", standard_key.value),
            ("grace", in_grace.value),
            ("rolled", rolled.value),
            ("deleted", deleted.value),
            ("mistyped", mistyped),
            ("unknown", keys.generate()),
            ("other", "sk_live_0123456789"),
        )
    }
    for each in credentials.values():
        runtime.import_credential(each)
    # The oldest of 105 templates: beyond one page of the list.
    oldest = services.templates.create(account.id, TemplateFields(name="Oldest", body="x"))
    for number in range(104):
        clock.advance(seconds=1)
        services.templates.create(account.id, TemplateFields(name=f"Memo {number}", body="x"))
    trigger = node(
        package, "TemplateTo Trigger", "templateToTrigger", "good", event="document.created"
    )
    trigger["webhookId"] = "6f1c2a8e-6c4e-4f59-9a51-3c1f1e2d7a10"
    runtime.import_workflow(workflow("trigger", [trigger], []))

    def n8n_hooks() -> list[dict]:
        return requests.get(
            server.url + "/n8n/hooks", headers=key_header(standard_key.value), timeout=10
        ).json()["hooks"]

    template_node = node_type(package, "templateTo")
    create = {"resource": "document", "operation": "create"}
    with runtime.running() as n8n_server:
        tested = {name: n8n_server.test_credential(each) for name, each in credentials.items()}

        def search(filter: str = "", token: str | None = None) -> dict:
            return n8n_server.search_list(
                template_node,
                "template_id",
                "searchTemplates",
                credentials["good"],
                create,
                filter,
                token,
            )

        first_page = search()
        second_page = search(token=first_page["paginationToken"])
        found = search("olde")
        n8n_server.activate("trigger")
        [subscription] = n8n_hooks()

    assert tested == {
        "good": {"status": "OK", "message": "Connection successful!"},
        "grace": {
            "status": "Error",
            "message": f"This value still works, until {grace_ends} only: the API key "
            "'n8n staging 2' was rolled. Paste the key's new value here before then.",
        },
        "rolled": {
            "status": "Error",
            "message": "The API key 'n8n production' was rolled on 2026-11-20 10:03 UTC: this "
            "value no longer works. Update the TemplateTo credential in n8n with the key's new "
            "value.",
        },
        "deleted": {
            "status": "Error",
            "message": "The API key 'n8n staging' was deleted on 2026-11-20 10:03 UTC. Create a "
            "new key on the API keys page and update the TemplateTo credential in n8n with it.",
        },
        "mistyped": {
            "status": "Error",
            "message": "This API key looks mistyped or truncated: its checksum does not match. "
            "Copy the key again, in full, from the API keys page. Then update the TemplateTo "
            "credential in n8n.",
        },
        "unknown": {
            "status": "Error",
            "message": "This API key is not known here: it was never issued by this TemplateTo "
            "deployment, or it was deleted more than 90 days ago. Check that the integration "
            "uses the right server address and a key copied from its API keys page. Then "
            "update the TemplateTo credential in n8n.",
        },
        "other": {
            "status": "Error",
            "message": tested["other"]["message"],
        },
    }
    assert tested["other"]["message"].startswith("This is not a valid TemplateTo API key: ")
    # Every template can be chosen: 106 (the invoice is older still), a page at a time.
    assert len(first_page["results"]) == 100 and first_page["paginationToken"]
    assert first_page["results"][0]["name"] == "Memo 103"
    assert second_page["results"][-2:] == [
        {"name": "Oldest", "value": oldest.id},
        {"name": "Invoice", "value": invoice.id},
    ]
    assert len(second_page["results"]) == 6 and "paginationToken" not in second_page
    assert found["results"] == [{"name": "Oldest", "value": oldest.id}]
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


def test_a_trigger_that_cannot_activate_names_the_key_and_what_to_do(
    n8n, package, start_server, services, account
) -> None:
    server = start_server()
    key = services.keys.create(account.id, "n8n trigger")
    runtime: N8n = n8n(package)
    runtime.import_credential(credential("trigger", server.url, key.value))
    trigger = node(
        package, "TemplateTo Trigger", "templateToTrigger", "trigger", event="document.created"
    )
    trigger["webhookId"] = "0b7e0f1e-55c4-4a5e-a0f5-6f77e2b1f9a3"
    runtime.import_workflow(workflow("trigger", [trigger], []))
    with runtime.running() as n8n_server:
        n8n_server.activate("trigger")
    services.keys.roll(None, key.id)

    with runtime.running() as n8n_server:  # n8n activates its active workflows as it starts
        error = n8n_server.activation_error("trigger")

    assert error == (
        "Authorization failed - please check your credentials: The API key 'n8n trigger' was "
        "rolled on 2026-11-20 10:03 UTC: this value no longer works. Update the TemplateTo "
        "credential in n8n with the key's new value."
    )


def test_subtitles_say_what_the_node_does(package, n8n_runtime) -> None:
    nodes = package / "dist" / "nodes"
    template_to = nodes / "TemplateTo" / "TemplateTo.node.js"
    trigger = nodes / "TemplateToTrigger" / "TemplateToTrigger.node.js"

    assert node_subtitle(template_to, {"resource": "template", "operation": "getAll"}) == (
        "Get many templates"
    )
    assert node_subtitle(template_to, {"resource": "document", "operation": "create"}) == (
        "Create a file"
    )
    assert node_subtitle(trigger, {"event": "api_key.rolled"}) == "API Key Rolled"
