# The two commands: `make repro` runs the pipeline, `make test` runs the tests.
# Each creates .venv if needed and installs the project into it first.
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: repro test install browser
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

repro: install
	dvc repro

# What tests/test_plots_page.py needs besides the venv: Debian's chromium (apt-get, when run as root)
# and the vega scripts of DVC's plots page, fetched from the npm registry into $(VENV)/vega.
# Without them that test skips, and fails under CI=true.
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM
browser: install
	@test -x $(CHROMIUM) || test "$$(id -u)" != 0 || { echo "installing chromium (apt-get)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
	  >$(VENV)/apt-chromium.log 2>&1 || tail -n 20 $(VENV)/apt-chromium.log; }
	@test -x $(CHROMIUM) || echo "make: no $(CHROMIUM) (apt-get install chromium needs root): the plots page test cannot run"
	@python tools/plots_page.py fetch >/dev/null || echo "make: no vega scripts (npm pack failed): the plots page test cannot run"

test: install browser
	python -m pytest -q
