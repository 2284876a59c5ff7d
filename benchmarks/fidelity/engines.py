"""The service's PDF engines as the benchmark uses them: the renderer the service builds (a render
slot, a render process of its pool, its limits), converting HTML as ``POST
/render/pdf/fromhtml`` does."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from connector.rendering import Renderer, RenderLimits
from connector.rendering.pool import RenderPool
from connector.rendering.slots import RenderSlots

ENGINES = ("xhtml2pdf", "weasyprint", "chromium")
ACCOUNT = "acc_fidelity"


class ServiceEngines:
    """Converts HTML with each engine this deployment has."""

    def __init__(self, renderer: Renderer) -> None:
        self._renderer = renderer

    def unavailable(self) -> dict[str, str]:
        """Each engine this deployment lacks, with why."""
        return {engine: "not in this version of the service" for engine in ENGINES[1:]}

    def convert(self, engine: str, html: str) -> bytes:
        """``html`` as a PDF by ``engine``; the service's ``BridgeError`` when it refuses it."""
        assert engine == "xhtml2pdf", engine
        return self._renderer.html_to_pdf(ACCOUNT, html).content


@contextmanager
def service_engines() -> Iterator[ServiceEngines]:
    """The service's renderer with its default limits and two render processes, as ``serve``
    starts it in a web worker."""
    with tempfile.TemporaryDirectory(prefix="bench-fidelity-") as slots:
        renderer = Renderer(
            RenderPool(processes=2, memory_mb=512),
            RenderSlots(Path(slots), capacity=2, queue=4),
            RenderLimits(),
        )
        renderer.start()
        try:
            yield ServiceEngines(renderer)
        finally:
            renderer.close()
