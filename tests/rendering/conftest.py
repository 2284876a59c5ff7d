"""A renderer as the service builds it, render processes included, with short time limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.rendering import Renderer, RenderLimits
from connector.rendering.pool import RenderPool
from connector.rendering.slots import RenderSlots

TXT_SECONDS = 1.0
PDF_SECONDS = 3.0


@pytest.fixture
def renderer(tmp_path: Path) -> Iterator[Renderer]:
    renderer = Renderer(
        RenderPool(processes=2, memory_mb=512),
        RenderSlots(tmp_path / "slots", capacity=2, queue=2),
        RenderLimits(txt_seconds=TXT_SECONDS, pdf_seconds=PDF_SECONDS),
    )
    renderer.start()  # as serve starts it in each web worker
    yield renderer
    renderer.close()
