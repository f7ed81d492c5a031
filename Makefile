# asyncfn — `make help` lists the targets.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help run test lint typecheck bench docs clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP) ## start a node on SQLite in ./.asyncfn with examples/ deployed
	$(BIN)/asyncfn serve --data-dir .asyncfn --deploy examples

lint: $(STAMP) ## ruff
	$(BIN)/ruff check asyncfn tests bench
	$(BIN)/ruff format --check asyncfn tests bench

typecheck: $(STAMP) ## mypy --strict
	$(BIN)/mypy

test: lint typecheck ## lint, type check and the whole suite
	$(BIN)/pytest -q

bench: $(STAMP) ## the benchmark harness (prints one table)
	$(BIN)/python -m bench

docs: $(STAMP) ## regenerate docs/states.md from the state machine
	$(BIN)/python -m asyncfn.domain.states > docs/states.md

clean: ## remove the venv and local data
	rm -rf $(VENV) .asyncfn .mypy_cache .ruff_cache .pytest_cache
