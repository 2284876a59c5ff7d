# Quick start: `make run` serves the embedded default (SQLite, local files, demo data);
# `make test` runs the whole test suite. Both set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint bench clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

run: $(BIN)/.installed
	$(BIN)/templateto-bridge init
	$(BIN)/templateto-bridge demo
	$(BIN)/templateto-bridge serve --host $(HOST) --port $(PORT)

# Zapier's own runtime, to run the exported app in the tests (skipped where npm is missing).
ZAPIER_RUNTIME := tests/zapier/runtime

$(ZAPIER_RUNTIME)/node_modules/.installed: $(ZAPIER_RUNTIME)/package.json
	@if command -v npm >/dev/null; then \
	  npm install --prefix $(ZAPIER_RUNTIME) --no-audit --no-fund --silent && touch $@; \
	else echo "npm not found: the Zapier runtime tests will be skipped"; fi

test: $(BIN)/.installed $(ZAPIER_RUNTIME)/node_modules/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks.auth
	$(BIN)/python -m benchmarks.rendering
	$(BIN)/python -m benchmarks.documents
	$(BIN)/python -m benchmarks.webhooks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
