# Switchboard developer commands. Prerequisites: Python 3.11+, Java 17+, Maven (see README).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup jars run demo bench test lint unit clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# Silero VAD's ONNX model only: the package itself would pull torch (CUDA build), so no dependencies.
	$(BIN)/pip install --quiet --no-deps 'silero-vad==6.2.3'
	touch $(STAMP)

## setup: create the virtualenv, install Switchboard, resolve the Kafka broker jars (cached)
setup: $(STAMP) jars

jars: $(STAMP)
	$(BIN)/python -c "from infra.settings import Settings; from infra.broker import resolve_jars; \
	print('Kafka jars in', resolve_jars(Settings().kafka_jars_dir))"

## run: start the local broker and every Switchboard process until Ctrl-C
run: setup
	$(BIN)/switchboard up

## demo: like run, then play a few simulated calls and print their alerts and the API queries to try
demo: setup
	$(BIN)/switchboard up --demo

## bench: the full benchmark run (end to end, references, ~20 min on 2 cores) -> benchmarks/RESULTS.md
bench: setup
	$(BIN)/python benchmarks/run.py

## lint: ruff, mypy --strict, import-linter layering contracts
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

## test: lint, then the whole suite (unit, integration and e2e, against a real broker it starts itself)
test: setup lint
	$(BIN)/python -m pytest --durations=10

## unit: only the fast, pure tests
unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

clean:
	rm -rf $(VENV) .switchboard .pytest_cache .mypy_cache .ruff_cache
