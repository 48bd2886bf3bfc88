# The two commands: `make repro` runs the pipeline, `make test` runs the tests.
# Each creates .venv if needed and installs the project into it first.
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: repro test install
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

repro: install
	dvc repro

test: install
	python -m pytest -q
