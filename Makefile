# Two commands on a fresh machine:
#   make demo   set up and run the main job on the embedded default (handoff mode, reference agent, no API key)
#   make test   set up and run every test (lint, types, Python suite, extension, real editors)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install lint test test-python test-extension demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check server tests bench scripts
	$(VENV)/bin/mypy
	$(PY) -m conductor.contract.schemas --check
	$(VENV)/bin/lint-imports
	$(PY) scripts/check_lazy_imports.py

test-extension:
	@if [ -f editor-client/package.json ]; then \
	  cd editor-client && npm ci --no-audit --no-fund && npm run build && npm run typecheck && npm run lint && npm test && npm run package; \
	fi

test-python: install
	$(PY) -m pytest -q

test: lint test-extension test-python

demo: install
	CONDUCTOR=$(CURDIR)/$(VENV)/bin/conductor PYTHON=$(CURDIR)/$(PY) bash scripts/demo.sh

# Every figure of the README's Benchmarks section, each beside its floor or peer measured in the same
# run (about 10 minutes on a quiet 2-core machine once ~/.cache/conductor-bench holds the long plan
# and yaml-language-server). The larger runs the README also quotes: bench_journal.py --events 1000000.
bench: install
	uptime
	$(PY) bench/bench_validation.py --quick
	$(PY) bench/bench_startup.py --runs 5
	$(PY) bench/bench_lsp.py --edits 30
	$(PY) bench/bench_journal.py
	$(PY) bench/bench_handoff.py --tasks 150
	$(PY) bench/bench_steps.py --steps 40,160,640
	uptime

clean:
	rm -rf $(VENV) dist build
