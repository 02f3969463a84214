# pycorefile: `make serve` and `make test` set up .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test lint unit bench venv clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

## Serve examples/Corefile on 127.0.0.1:1053 (metrics on 127.0.0.1:9153).
serve: $(STAMP)
	$(BIN)/pycorefile serve -conf examples/Corefile

## Lint, type-check, then every test (unit, integration with real servers, promtool rules).
test: $(STAMP) lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests

lint: $(STAMP)
	$(BIN)/ruff check pycorefile plugins tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
