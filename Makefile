# HSSK — two commands for a newcomer: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean serve screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(STAMP)

install: $(STAMP)

## make demo: virtualenv + install + embedded PostgreSQL + synthetic district + web on :8000
demo: $(STAMP)
	$(BIN)/hssk demo

## make test: virtualenv + dev install + ruff + mypy + import contracts + the whole pytest suite
test: $(STAMP)
	$(BIN)/ruff check hssk benchmarks tests
	$(BIN)/ruff format --check hssk benchmarks tests
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check --fix hssk benchmarks tests
	$(BIN)/ruff format hssk benchmarks tests

serve: $(STAMP)
	$(BIN)/hssk serve

## make screenshots: refresh docs/screenshots from the browser tests
screenshots: $(STAMP)
	HSSK_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest -q tests/web tests/monitor -k "browser or journey"

clean:
	rm -rf $(VENV) .hssk .mypy_cache .ruff_cache
