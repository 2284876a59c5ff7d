"""The README's three pre-commit lines, run by the real `pre-commit` on a throwaway repository:
a commit holding a key is refused, naming the file and line; one without passes.

pre-commit installs this package from a repository at a commit, as it would from the URL a user
writes: here a local git repository holding this checkout's files as they are now (committed or
not), so nothing is fetched but the package's dependencies.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from connector import keys

ROOT = Path(__file__).parents[2]
# What `pip install .` of this package needs.
PACKAGE_FILES = (
    "pyproject.toml",
    "README.md",
    ".pre-commit-hooks.yaml",
    "connector",
    "zapier_bridge",
    "n8n_bridge",
)


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=check, capture_output=True, text=True, timeout=500
    )


def new_repository(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "dev@acme.example")
    git(path, "config", "user.name", "Dev")
    git(path, "config", "commit.gpgsign", "false")
    return path


def readme_lines() -> str:
    """The README's yaml block: the lines a user adds under `repos:`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```yaml\n(.*?)^```", text, re.M | re.S)
    assert len(blocks) == 1
    return blocks[0]


@pytest.fixture
def hooks_repository(tmp_path: Path) -> tuple[Path, str]:
    """This package's files as they are now, committed in a repository of their own."""
    repository = new_repository(tmp_path / "templateto-bridge")
    ignored = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in PACKAGE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repository / name, ignore=ignored)
        else:
            shutil.copy2(source, repository / name)
    git(repository, "add", "-A")
    git(repository, "commit", "-q", "-m", "this checkout")
    return repository, git(repository, "rev-parse", "HEAD").stdout.strip()


@pytest.mark.servers
@pytest.mark.timeout(900)
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_readme_hook_refuses_a_commit_with_a_key_and_passes_one_without(
    hooks_repository: tuple[Path, str], tmp_path: Path
) -> None:
    hooks_path, revision = hooks_repository
    lines = readme_lines()
    assert len(lines.splitlines()) == 3
    project = new_repository(tmp_path / "project")
    (project / ".pre-commit-config.yaml").write_text(
        "repos:\n"
        + textwrap.indent(lines.replace("REPO", str(hooks_path)).replace("REV", revision), "  ")
    )
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-cache")}
    subprocess.run(
        [sys.executable, "-m", "pre_commit", "install"], cwd=project, env=env, check=True
    )
    value = keys.generate()
    (project / "settings.py").write_text(f'DEBUG = False\nAPI_KEY = "{value}"\n')
    git(project, "add", "-A")

    refused = subprocess.run(
        ["git", "commit", "-m", "settings"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=800,
    )

    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output
    assert f"settings.py:2: tt_live_…{value[-4:]}" in output
    assert value not in output
    assert git(project, "log", check=False).returncode != 0  # nothing was committed

    (project / "settings.py").write_text('DEBUG = False\nAPI_KEY = os.environ["API_KEY"]\n')
    git(project, "add", "-A")
    passed = subprocess.run(
        ["git", "commit", "-m", "settings from the environment"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "TemplateTo API keys" in passed.stdout + passed.stderr
    assert git(project, "log", "--oneline").stdout.count("\n") == 1
