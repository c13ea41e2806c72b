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

bench: install
	$(PY) bench/bench_validation.py

clean:
	rm -rf $(VENV) dist build
