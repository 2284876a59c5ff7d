"""Zapier's own runtime (zapier-platform-core), which `make test` installs with npm."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

RUNTIME = Path(__file__).with_name("runtime")


@pytest.fixture(scope="session")
def zapier_runtime() -> Path:
    """The node_modules holding zapier-platform-core (skipped when missing, outside CI)."""
    node_modules = RUNTIME / "node_modules"
    if not (node_modules / "zapier-platform-core").exists():
        message = "Zapier's runtime is not installed: `make test` installs it when npm is available"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return node_modules
