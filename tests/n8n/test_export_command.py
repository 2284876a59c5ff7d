"""``templateto-bridge export n8n``: every link the package carries is a real address."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from n8n_bridge.export import export_command


def test_the_package_is_refused_without_the_services_address(tmp_path: Path) -> None:
    runner = CliRunner()

    missing = runner.invoke(export_command, ["--out", str(tmp_path / "a")])
    not_an_address = runner.invoke(
        export_command, ["--out", str(tmp_path / "b"), "--base-url", "bridge.example.com"]
    )

    assert missing.exit_code == 2 and "Missing option '--base-url'" in missing.output
    assert not_an_address.exit_code == 2
    assert "'bridge.example.com' is not the service's address" in not_an_address.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_repository_fills_package_json_and_the_nodes_documentation_link(tmp_path: Path) -> None:
    repository = "https://github.com/acme/n8n-nodes-templateto"

    written = CliRunner().invoke(
        export_command,
        [
            "--out",
            str(tmp_path),
            "--base-url",
            "https://bridge.example.com/",
            "--repository",
            repository,
        ],
    )

    assert written.exit_code == 0, written.output
    package = json.loads((tmp_path / "package.json").read_text())
    assert package["repository"] == {"type": "git", "url": repository}
    assert package["homepage"] == "https://bridge.example.com"
    codex = json.loads((tmp_path / "dist/nodes/TemplateTo/TemplateTo.node.json").read_text())
    assert codex["resources"] == {
        "credentialDocumentation": [{"url": "https://bridge.example.com/generate/api-keys"}],
        "primaryDocumentation": [{"url": f"{repository}#readme"}],
    }
    assert "https://bridge.example.com/generate/api-keys" in (tmp_path / "README.md").read_text()
