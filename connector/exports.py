"""What the bridges' ``export`` commands share: writing a generated package to disk."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from pydantic import HttpUrl, ValidationError


def write_files(out: Path, files: Mapping[str, str]) -> list[Path]:
    """Write each file (by its path under ``out``) as UTF-8; returns the paths written."""
    written = []
    for name, content in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


class BaseUrl(click.ParamType):
    """Where a platform finds this service: an http:// or https:// address with a host and
    nothing after the path, e.g. https://bridge.example.com; given back as written."""

    name = "url"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            url = HttpUrl(value)
        except ValidationError:
            url = None
        if url is None or url.query or url.fragment or url.username or url.password:
            self.fail(
                f"{value!r} is not the service's address: write it as "
                "https://bridge.example.com (http:// or https://, a host, optionally a path)",
                param,
                ctx,
            )
        return value
