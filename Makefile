# Two entry points for a fresh machine: `make demo` (set up, then fine-tune a language model on
# financial tweets and rank it beside TF-IDF; `fintune quickstart tables` is the credit demo)
# and `make test` (set up, then the test suite); `make docs` builds the docs site. Everything installs within
# constraints.txt, the exact versions the tests ran with.
#
# torch is pinned apart: an unpinned torch pulls a multi-GB CUDA build. This project's
# machines get the CPU wheel from their pip configuration; on a stock machine pass
# PyTorch's CPU index: `make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
EXTRAS ?= all,test,docs

.PHONY: setup demo test test-all docs bench clean constraints

$(BIN)/fintune: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $@

setup: $(BIN)/fintune

demo: setup
	$(BIN)/fintune quickstart

test: setup
	$(BIN)/python -m pytest -q

# The docs site into site/ (open site/index.html); --strict: a broken link or reference fails.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

test-all: setup
	$(BIN)/python -m pytest -q -m ""

bench: setup
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all,test,bench]"
	$(BIN)/python benchmarks/sentiment_tfns.py
	$(BIN)/python benchmarks/strategies_tfns.py
	$(BIN)/python benchmarks/ner_sec.py

clean:
	rm -rf $(VENV) runs site .pytest_cache

constraints: setup
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^torch==' > constraints.body
	(sed -n '1,3p' constraints.txt; cat constraints.body) > constraints.txt && rm constraints.body
