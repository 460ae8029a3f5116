# `make run` and `make test` work on a fresh machine with Python 3.11+, git and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LAKE ?= lake

.PHONY: run test reliability synth bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Sluice needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# requirements/lambda.txt pins what the Lambda layer holds: the venv gets the same versions.
$(VENV)/.run-deps: $(BIN)/python pyproject.toml requirements/lambda.txt
	$(BIN)/python -m pip install --quiet -c requirements/lambda.txt -e '.[local]'
	@touch $@

$(VENV)/.dev-deps: $(BIN)/python pyproject.toml requirements/lambda.txt
	$(BIN)/python -m pip install --quiet -c requirements/lambda.txt -e '.[dev]'
	@touch $@ $(VENV)/.run-deps

run: $(VENV)/.run-deps
	$(BIN)/sluice run samples/* --lake $(LAKE)

test: $(VENV)/.dev-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest

# The fault and bad-input suite alone, with its summary (cases, passed, rows lost).
reliability: $(VENV)/.dev-deps
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest tests/reliability -q -p no:randomly

# Every benchmark section (docs/performance.md): in process against a pyarrow floor, polars and
# pandas; through the local cloud's S3; many files per day; many days per file; cold starts.
# One targets table; all results in bench/data/bench-<time>.json. Pick sections with e.g.
# `make bench BENCH_ARGS="--sections through_s3,manydays"`.
bench: $(VENV)/.run-deps
	$(BIN)/python -m pip install --quiet -c requirements/lambda.txt -e '.[bench]'
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m bench.suite $(BENCH_ARGS)

synth: $(VENV)/.dev-deps
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python app.py

clean:
	rm -rf $(LAKE) cdk.out .pytest_cache .mypy_cache .ruff_cache
