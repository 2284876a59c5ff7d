"""Layout fidelity: how closely each PDF engine of the service prints a corpus of real-world
templates where Chromium's own print puts them.

    python -m benchmarks.fidelity             # the table: score and time per page, per engine
    python -m benchmarks.fidelity.picture     # docs/screenshots/engines.png for the README

Method: docs/benchmarks.md, "Layout fidelity". The corpus and its licences: corpus/ATTRIBUTION.md.
"""
