# hptransfer: `make bench` runs the main job, `make test` the tests. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUITE  ?= quick
OUT    ?= results/$(SUITE)

.PHONY: setup test lint bench clean

$(BIN)/hptransfer: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/hptransfer

test: setup
	$(BIN)/python -m pytest -q tests

lint: setup
	$(BIN)/ruff check hptransfer tests benchmarks
	$(BIN)/ruff format --check hptransfer tests benchmarks

bench: setup
	$(BIN)/python benchmarks/run.py $(SUITE) --out $(OUT)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
