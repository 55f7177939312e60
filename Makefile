# gridshift developer entry points. `make setup` once, then `make test`.
SHELL := /bin/bash
VENV ?= .venv
PYTHON := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup system-deps demo e2e test unit lint crds crds-check clean

setup: system-deps chart-deps image-deps $(VENV)/.installed ## system packages, the virtualenv, gridshift with its dev tools

system-deps: ## Debian's Prometheus (tests start their own instances on 127.0.0.1)
	@if command -v prometheus >/dev/null && command -v promtool >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's prometheus"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null && \
	  { systemctl disable --now prometheus >/dev/null 2>&1 || service prometheus stop >/dev/null 2>&1 || true; }; \
	else echo "prometheus missing: run 'sudo apt-get install prometheus' (needed by cluster tests)"; fi

$(VENV)/.installed: pyproject.toml
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e '.[dev]'
	@touch $@

lint: setup ## ruff, mypy strict, the import-layer contract
	$(VENV)/bin/ruff check operator tests bench e2e
	$(VENV)/bin/ruff format --check operator tests bench e2e
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

crds: setup ## regenerate crds/ from the API models
	$(VENV)/bin/gridshift crds

crds-check: setup
	$(VENV)/bin/gridshift crds --check

unit: setup ## tests that need no cluster
	GRIDSHIFT_SKIP_CLUSTER=1 $(PYTHON) -m pytest -q

test: lint ## everything CI runs: lint, then all tests (clusters are built/started as needed)
	$(PYTHON) -m pytest -q --durations=25

e2e: setup cluster-build ## end-to-end tests of the operator on real control planes (starts and stops what they need)
	$(PYTHON) -m pytest -q tests/e2e

DEMO_DAYS ?= 7
DEMO_SPEED ?= 1440

demo: setup cluster-build ## a week of real prices (about 8 min idle, more on a busy machine): hub + 3 regions + world + operator, three models moved and scaled
	$(MAKE) cluster-up CLUSTER_WORLD=e2e/cluster/demo-planes.yaml READY_DELAY=1.25
	$(MAKE) world-up WORLD_PROMETHEUS=1 WORLD_SPEED=60 WORLD_TICK=2 WORLD_CATCH_UP=0 WORLD_START=2024-05-06T00:00:00Z WORLD_RATE=0 \
	  || { $(MAKE) world-down; $(MAKE) cluster-down; exit 1; }
	$(PYTHON) e2e/demo.py --days $(DEMO_DAYS) --speed $(DEMO_SPEED); status=$$?; $(MAKE) world-down; $(MAKE) cluster-down; exit $$status

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .mutation build

include e2e/cluster/cluster.mk
include chart.mk
include gpu-check.mk
include e2e/world/world.mk
include mutation.mk
include image.mk
