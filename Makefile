# The two commands a new user needs: `make demo` and `make test`.
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,sandbox]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/azaguard demo

test: $(STAMP)
	bash scripts/ensure-chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

# No server, no browser: the tests the fixtures do not mark integration, browser or services (tests/conftest.py).
test-fast: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -m "not integration and not browser and not services"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

$(VENV)/.bench-installed: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,sandbox,bench]'
	touch $@

bench: $(VENV)/.bench-installed
	$(PY) bench/bench.py
