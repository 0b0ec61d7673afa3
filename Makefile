# Every target sets itself up: the venv is (re)built only when pyproject.toml changed.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help venv demo test test-fast lint bench clean collector calibrator bot

help:
	@echo "make demo   - offline demo on a synthetic market (sets up .venv on first run)"
	@echo "make test   - the whole test suite"
	@echo "make lint   - ruff"
	@echo "make collector / calibrator / bot - the compose services, without Docker"
	@echo "make bench  - all benchmarks, hftbacktest side by side (see benchmarks/README.md)"

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or: make PYTHON=python3 ...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/asmm demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .

# The reference backtester pins numpy < 2.3: it gets a venv of its own.
HFT_STAMP := .venv-hft/.installed
$(HFT_STAMP):
	$(PYTHON) -m venv .venv-hft
	.venv-hft/bin/python -m pip install --quiet hftbacktest==2.4.4
	@touch $@

bench: $(STAMP) $(HFT_STAMP)
	HFT_PYTHON=.venv-hft/bin/python $(BIN)/python benchmarks/run.py

# The docker-compose services, run without Docker (settings from the environment / .env).
collector: $(STAMP)
	$(BIN)/asmm collect

calibrator: $(STAMP)
	$(BIN)/asmm calibrate --every 24h --bot-config user_data/config.json

bot: $(STAMP)
	@test -f .env || { echo "cp .env.example .env, then set the API password and JWT secret"; exit 2; }
	set -a && . ./.env && set +a && $(BIN)/freqtrade trade --config user_data/config.json --strategy Avellaneda

clean:
	rm -rf $(VENV) .venv-hft build *.egg-info .pytest_cache demo_run
