# oddsflow: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help venv demo test test-unit lint services-up down bench clean

help:
	@echo "make demo   start local Kafka + Postgres and run the whole pipeline on built-in data"
	@echo "make test   run the test suite against real Kafka and Postgres"
	@echo "make down   stop the local services"
	@echo "make bench  benchmark every stage"
	@echo "make lint   ruff"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing oddsflow and its dependencies into $(VENV) ..."
	@$(BIN)/pip install -q --upgrade pip
	@$(BIN)/pip install -q -e '.[test]'
	@touch $(STAMP)

# The benchmark's extra (matplotlib for its chart), and the Quix Streams peer's own environment:
# quixstreams caps confluent-kafka (<2.13) and pydantic (<2.14), so it lives in .venv-peer and the
# pipeline keeps its own versions. The peer's tests run in it too (make test builds it).
BENCH_STAMP := $(VENV)/.installed-bench
PEER_VENV   := .venv-peer
PEER_STAMP  := $(PEER_VENV)/.installed

$(BENCH_STAMP): $(STAMP)
	@echo "Installing the benchmark's extra (matplotlib) into $(VENV) ..."
	@$(BIN)/pip install -q -e '.[test,bench]'
	@touch $(BENCH_STAMP)

$(PEER_STAMP): pyproject.toml
	@test -x $(PEER_VENV)/bin/python || $(PYTHON) -m venv $(PEER_VENV)
	@echo "Installing the Quix Streams peer into $(PEER_VENV) ..."
	@$(PEER_VENV)/bin/pip install -q --upgrade pip
	@$(PEER_VENV)/bin/pip install -q -e '.[peer,test]'
	@touch $(PEER_STAMP)

venv: $(STAMP)

demo: $(STAMP)
	@$(BIN)/oddsflow demo

services-up: $(STAMP)
	@$(BIN)/oddsflow services up
	@$(BIN)/oddsflow topics create >/dev/null
	@$(BIN)/oddsflow db migrate

test: $(STAMP) $(PEER_STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/oddsflow schemas check
	@$(BIN)/pytest -q

test-unit: $(STAMP)
	@$(BIN)/pytest -q tests/unit

lint: $(STAMP)
	@$(BIN)/ruff check . && $(BIN)/ruff format --check .

down:
	@if [ -x $(BIN)/oddsflow ]; then $(BIN)/oddsflow services down; else echo "nothing to stop"; fi

bench: $(BENCH_STAMP) $(PEER_STAMP)
	@$(BIN)/oddsflow bench

clean: down
	rm -rf .local

.PHONY: chaos
# The full fault-injection suite (>= 100,000 raw records, kills, broker and database restarts,
# poisoned records); its reduced form runs inside `make test`.
chaos: $(STAMP)
	@$(BIN)/pytest -q -s -p no:cacheprovider tests/chaos/suite_full.py
