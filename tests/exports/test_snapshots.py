"""Both exports, file by file, as they were last reviewed: a change to what Zapier or n8n users
get shows in a diff of tests/exports/snapshots/. After a deliberate change, write them anew with
``UPDATE_SNAPSHOTS=1 pytest tests/exports`` and review the diff."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from n8n_bridge.export import export as export_n8n
from zapier_bridge.export import export as export_zapier

SNAPSHOTS = Path(__file__).with_name("snapshots")
BASE_URL = "https://bridge.example.com"


def files(directory: Path) -> dict[str, str]:
    return {
        path.relative_to(directory).as_posix(): path.read_text()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize(
    ("name", "export"), [("zapier", export_zapier), ("n8n", export_n8n)], ids=["zapier", "n8n"]
)
def test_the_export_is_as_reviewed(
    name: str, export: Callable[[Path, str], object], tmp_path: Path
) -> None:
    export(tmp_path, BASE_URL)
    snapshot = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS"):
        shutil.rmtree(snapshot, ignore_errors=True)
        shutil.copytree(tmp_path, snapshot)

    assert files(tmp_path) == files(snapshot)
