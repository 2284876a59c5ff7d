"""Layout fidelity of each PDF engine on the corpus, against Chromium's own print, with the time
per page of each engine measured in the same run (docs/benchmarks.md, "Layout fidelity").

    python -m benchmarks.fidelity [--rounds 3] [--only sparksuite-invoice,inambe-invoice]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pypdf import PdfReader

from benchmarks import live
from benchmarks.fidelity import reference
from benchmarks.fidelity.engines import ENGINES, ServiceEngines, service_engines
from benchmarks.fidelity.score import Word, score, words
from connector.errors import BridgeError

CORPUS = Path(__file__).with_name("corpus")
# Issue 19's targets: chromium on every template, weasyprint on average; xhtml2pdf as it is.
TARGETS = {"chromium": ("on every template", 0.95), "weasyprint": ("on average", 0.8)}
WARM_UP = "<p>Warming up</p>"


@dataclass
class Result:
    """One engine on one template: its score (None once it failed), render times and pages."""

    score: float | None = None
    seconds: list[float] = field(default_factory=list)
    pages: int = 0
    error: str = ""

    @property
    def ms_per_page(self) -> float:
        return statistics.median(self.seconds) * 1e3 / max(self.pages, 1)


def templates(only: Sequence[str] = ()) -> dict[str, str]:
    """The corpus's templates by name (the file name without ``.html``), sorted."""
    found = {path.stem: path.read_text(encoding="utf-8") for path in sorted(CORPUS.glob("*.html"))}
    unknown = set(only) - set(found)
    if unknown:
        raise SystemExit(f"No such template in {CORPUS}: {', '.join(sorted(unknown))}")
    return {name: html for name, html in found.items() if not only or name in only}


def measure(
    engines: ServiceEngines, corpus: dict[str, str], references: dict[str, list[Word]], rounds: int
) -> dict[tuple[str, str], Result]:
    """Each available engine on each template ``rounds`` times, the engines taking turns on each
    template so that they see the same machine; scored on the first round's PDF. A template an
    engine fails to convert scores 0 in the averages. Before the rounds, each engine converts a
    page untimed: a serving render process has its browser warm."""
    results: dict[tuple[str, str], Result] = {}
    available = [engine for engine in ENGINES if engine not in engines.unavailable()]
    for engine in available:
        engines.convert(engine, WARM_UP)
    for round_number in range(rounds):
        for name, html in corpus.items():
            for engine in available:
                result = results.setdefault((name, engine), Result())
                if result.error:
                    continue
                started = time.perf_counter()
                try:
                    pdf = engines.convert(engine, html)
                except BridgeError as error:
                    result.error = error.code
                    continue
                result.seconds.append(time.perf_counter() - started)
                if round_number == 0:
                    result.pages = len(PdfReader(io.BytesIO(pdf)).pages)
                    result.score = score(references[name], words(pdf))
    return results


def report(
    results: dict[tuple[str, str], Result], corpus: Sequence[str], missing: dict[str, str]
) -> None:
    """The table (score · time per page, per template and engine, and the averages), the
    engines not measured, and each target met or not."""
    engines = [engine for engine in ENGINES if engine not in missing]
    rows = []
    for name in corpus:
        row: list[object] = [name]
        for engine in engines:
            result = results[name, engine]
            row.append(
                f"failed ({result.error})"
                if result.error
                else f"{result.score:.2f} · {result.ms_per_page:.0f} ms"
            )
        rows.append(row)
    averages: list[object] = ["**average**"]
    for engine in engines:
        engine_results = [results[name, engine] for name in corpus]
        mean = statistics.mean(r.score or 0.0 for r in engine_results)
        timed = [r.ms_per_page for r in engine_results if not r.error]
        averages.append(f"**{mean:.2f}** · {statistics.median(timed) if timed else 0:.0f} ms")
    rows.append(averages)
    live.table(
        "template | " + " | ".join(f"{engine}: score · time per page" for engine in engines), rows
    )
    for engine, why in missing.items():
        print(f"{engine}: not installed, not measured ({why})")
    for engine, (kind, target) in TARGETS.items():
        if engine in missing:
            continue
        scores = [results[name, engine].score or 0.0 for name in corpus]
        value = min(scores) if kind == "on every template" else statistics.mean(scores)
        met = "met" if value >= target else "NOT met"
        print(f"{engine}: {kind} ≥ {target}: {met} ({value:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="renders per engine and template")
    parser.add_argument("--only", default="", help="comma-separated template names")
    arguments = parser.parse_args()
    corpus = templates([name for name in arguments.only.split(",") if name])
    with reference.chromium() as browser:
        references = {
            name: words(reference.print_pdf(browser, html)) for name, html in corpus.items()
        }
    with service_engines() as engines:
        missing = engines.unavailable()
        results = measure(engines, corpus, references, arguments.rounds)
    report(results, list(corpus), missing)


if __name__ == "__main__":
    main()
