# Two entry points for a fresh machine: `make demo` (set up, then the offline main job)
# and `make test` (set up, then the test suite). CPU torch is pinned: an unpinned torch
# pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: setup demo test test-all bench clean

$(BIN)/fintune: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

setup: $(BIN)/fintune

demo: setup
	$(BIN)/fintune quickstart

test: setup
	$(BIN)/python -m pytest -q

test-all: setup
	$(BIN)/python -m pytest -q -m ""

bench: setup
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python benchmarks/sentiment_tfns.py
	$(BIN)/python benchmarks/strategies_tfns.py
	$(BIN)/python benchmarks/ner_sec.py

clean:
	rm -rf $(VENV) runs .pytest_cache
