# Advisor: `make run` starts the app (SQLite + offline demo provider when nothing is configured);
# `make test` installs, makes sure PostgreSQL/Redis/Chromium are there, and runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQ_HASH := $(shell cat requirements.txt | sha256sum | cut -c1-16)
DEV_HASH := $(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
# the peer of bench.turn_overhead (LiteLLM), in its own virtualenv: never in the app's
PEER_VENV := .peer-venv
PEER_HASH := $(shell cat bench/peer-requirements.txt | sha256sum | cut -c1-16)
PORT ?= 8501

.PHONY: run install install-dev test lint bench peer-venv demo services clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.req-$(REQ_HASH): requirements.txt | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-$(DEV_HASH): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.req-$(REQ_HASH)

install: $(VENV)/.req-$(REQ_HASH)
install-dev: $(VENV)/.dev-$(DEV_HASH)

$(PEER_VENV)/.req-$(PEER_HASH): bench/peer-requirements.txt
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install -q -r bench/peer-requirements.txt
	touch $@

peer-venv: $(PEER_VENV)/.req-$(PEER_HASH)

run: install
	$(PY) -m core.db migrate
	$(VENV)/bin/streamlit run streamlit_app.py --server.port $(PORT)

services:
	bash scripts/ensure_services.sh

test: install-dev services
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

bench: install-dev services peer-venv
	$(PY) -m bench.run_all $(BENCH_ARGS)

# A demo database: 20 users x 5,000 realistic runs; sign in as seed1-user00000@example.com / demo-password-1
demo: install-dev
	$(PY) -m bench.seed_runs --migrate --users 20 --runs 5000 --seed 1 --demo-password demo-password-1
	$(VENV)/bin/streamlit run streamlit_app.py --server.port $(PORT)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
