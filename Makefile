# hptransfer: `make bench` runs the main job, `make test` the tests (every behaviour; the tests
# marked slow, bigger or end-to-end versions of cheaper ones, are left to `make test-all`).
# Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUITE  ?= quick
OUT    ?= results/$(SUITE)

.PHONY: setup test test-all lint bench gate mutation clean

$(BIN)/hptransfer: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/hptransfer

# Two pytest-xdist workers (TEST_WORKERS): many tests wait on single-threaded compiles. A test
# file runs on one worker (--dist loadfile), so a module's shared fixture (a sweep trained once
# for several tests) is built once. (loadgroup would be finer, but pytest-xdist 3.8 cannot
# rename a node's id under pytest 9, which its groups need.)
# --durations: every run (CI's too) lists its 20 slowest tests, where the time goes. The tests
# compile at XLA's backend optimisation level 0 (tests/conftest.py: they are compile-bound).
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=20
test: setup
	$(PYTEST) -m "not slow" tests

test-all: setup
	$(PYTEST) tests

lint: setup
	$(BIN)/ruff check hptransfer tests benchmarks
	$(BIN)/ruff format --check hptransfer tests benchmarks
	$(BIN)/lint-imports  # the layer rule of pyproject.toml [tool.importlinter]

bench: setup
	$(BIN)/python benchmarks/run.py $(SUITE) --out $(OUT)

# The CI gate as .ci/run runs it: the ci sweep and its check (docs/ci-gate.md). GATE_OUT keeps the
# sweeps (resumable). `make mutation` adds the mutation test (every mutant of benchmarks/mutants.toml
# must fail the same check; about 5 minutes on 2 cores, too long for CI's 9): its measured kill
# table is results/gate/ (python benchmarks/gate_power.py), and `make test` fails when the gate's
# inputs (config, schemes, mutants, expectations, baseline) differ from the ones it was measured on.
GATE_OUT ?= results/scratch/gate
gate: setup
	$(BIN)/hptransfer sweep benchmarks/ci.toml --out $(GATE_OUT)/gate --quiet
	$(BIN)/hptransfer check $(GATE_OUT)/gate --suite ci

mutation: gate
	$(BIN)/hptransfer mutate benchmarks/ci.toml --mutants benchmarks/mutants.toml --suite ci --out $(GATE_OUT) --quiet

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
