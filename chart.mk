# Helm chart, dcgm/ and GitOps checks (issue 9). Included from the top-level Makefile.
#   make chart        regenerate the chart's derived files (values schema, README, CRD copies, rules, argocd-cm)
#   make chart-test   chart tests: generated files current, helm lint/template, promtool, Lua health check,
#                     and (unless GRIDSHIFT_SKIP_CLUSTER=1) install/upgrade/RBAC on a real hub API server
VENV ?= .venv
PYTHON ?= $(VENV)/bin/python

.PHONY: chart chart-check chart-deps chart-test

chart: setup ## regenerate charts/gridshift's generated files
	$(PYTHON) -m gridshift_dev chart

chart-check: setup
	$(PYTHON) -m gridshift_dev chart --check

chart-deps: ## Lua 5.1 (Argo CD's dialect) and 5.4 for the health-check tests; promtool comes with system-deps
	@if command -v lua5.1 >/dev/null && command -v lua5.4 >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing lua5.1 and lua5.4"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lua5.1 lua5.4 >/dev/null; \
	else echo "lua missing: run 'sudo apt-get install lua5.1 lua5.4' (Argo CD health-check tests skip without it)"; fi

chart-test: setup chart-deps ## chart tests (helm and the hub are built/started as needed)
	$(PYTHON) -m pytest -q tests/chart
