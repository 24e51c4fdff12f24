# Baton — the commands a newcomer needs. Everything runs through uv (installed on demand).
# Environment variables (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL, BATON_*) pass through.

SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)

.PHONY: help install run up down test test-unit lint clean

help:
	@echo "make run       set up and run Baton locally with demo traffic (Ctrl-C stops)"
	@echo "make test      run the whole test suite (starts its own Kafka and PostgreSQL)"
	@echo "make up/down   the same local stack in the background / stop it"
	@echo "make lint      ruff (and cargo clippy on the compiled core)"

# The compiled scoring core needs Rust's cargo (rustup's ~/.cargo/bin counts too).
CARGO := $(shell command -v cargo 2>/dev/null || ls $(HOME)/.cargo/bin/cargo 2>/dev/null)
export PATH := $(if $(CARGO),$(dir $(CARGO)):,)$(PATH)

install:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"
ifeq ($(CARGO),)
	@echo "cargo not found: the scorer runs its Python core (install Rust for the compiled one)"
	@$(UV) sync --frozen --quiet
else
	@$(UV) sync --frozen --quiet --group native
endif
	@$(UV) run --frozen baton-devstack fetch-kafka

run: install
	@$(UV) run --frozen baton-devstack run

up: install
	@$(UV) run --frozen baton-devstack up

down:
	@$(UV) run --frozen baton-devstack down

# Where cargo is, CI (CI=true) requires the compiled core: a missing build fails the run
# instead of skipping its tests. The integration tests then run once more on the Python
# reference core, so both cores stay honest end to end.
ifneq ($(CARGO),)
ifneq ($(CI),)
export BATON_SCORER_CORE ?= native
endif
endif
PYTHON_CORE_TESTS := tests/scorer tests/analytics tests/e2e

test: install
ifneq ($(CARGO),)
	cd services/scorer-native && cargo test --quiet
endif
	$(UV) run --frozen pytest
ifneq ($(CARGO),)
	BATON_SCORER_CORE=python $(UV) run --frozen pytest -m integration $(PYTHON_CORE_TESTS)
endif

test-unit: install
	$(UV) run --frozen pytest -m "not integration"

lint: install
	$(UV) run --frozen ruff check .
ifneq ($(CARGO),)
	cd services/scorer-native && cargo clippy --quiet --all-targets -- -D warnings
endif

clean: down
	rm -rf .devstack
