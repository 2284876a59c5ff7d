"""The service's PDF engines as the benchmark uses them: the renderer the service builds (a render
slot, a render process of its pool, the default limits), converting HTML as ``POST
/render/pdf/fromhtml`` does with its ``"engine"`` and ``"page"`` (the benchmark's page setup)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from benchmarks import live
from benchmarks.fidelity.reference import PAGE
from connector.rendering import Renderer
from connector.rendering.engines import Engine

ENGINES = tuple(engine.value for engine in Engine)
ACCOUNT = "acc_fidelity"
MEMORY_MB = 512  # the service's default (BRIDGE_RENDER_MEMORY_MB)


class ServiceEngines:
    """Converts HTML with each engine this deployment has."""

    def __init__(self, renderer: Renderer) -> None:
        self._renderer = renderer

    def unavailable(self) -> dict[str, str]:
        """Each engine this deployment lacks, with what to install."""
        available = self._renderer.engines()["available"]
        return {
            engine.value: engine.install_hint for engine in Engine if engine.value not in available
        }

    def convert(self, engine: str, html: str) -> bytes:
        """``html`` as a PDF by ``engine``; the service's ``BridgeError`` when it refuses it."""
        return self._renderer.html_to_pdf(ACCOUNT, html, engine=Engine(engine), page=PAGE).content


@contextmanager
def service_engines() -> Iterator[ServiceEngines]:
    """The service's renderer with its default limits and two render processes, as ``serve``
    starts it in a web worker."""
    with live.own_renderer(2, memory_mb=MEMORY_MB) as renderer:
        yield ServiceEngines(renderer)
