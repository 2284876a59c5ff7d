"""Fixtures for running a real n8n (see harness.py): the installed runtime and fresh homes."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from .harness import NODE_MODULES, N8n, migrated_database


@pytest.fixture(scope="session")
def n8n_runtime() -> Path:
    """The node_modules holding n8n 2.8.4, which `make test` links in (skipped when missing)."""
    if not (NODE_MODULES / ".bin" / "n8n").exists():
        message = "n8n is not installed: `make test` (or `make n8n-runtime`) installs it with npm"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return NODE_MODULES


@pytest.fixture(scope="session")
def n8n_database(n8n_runtime: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """n8n's database migrated once per run: each home starts from a copy."""
    return migrated_database(tmp_path_factory.mktemp("n8n-template"), n8n_runtime)


@pytest.fixture
def n8n(n8n_runtime: Path, n8n_database: Path, tmp_path: Path) -> Callable[..., N8n]:
    """Make an n8n with the community package in ``package_dir`` loaded, in a home of its own
    (or in ``home``, where the package may already be installed)."""
    homes = itertools.count(1)

    def make(package_dir: Path, home: Path | None = None) -> N8n:
        home = home or tmp_path / f"n8n-home-{next(homes)}"
        return N8n(home, package_dir, node_modules=n8n_runtime, database=n8n_database)

    return make
