"""What the bridges' ``export`` commands share: writing a generated package to disk."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def write_files(out: Path, files: Mapping[str, str]) -> list[Path]:
    """Write each file (by its path under ``out``) as UTF-8; returns the paths written."""
    written = []
    for name, content in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
