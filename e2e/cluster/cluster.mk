# Multi-region test clusters (issue 3).  Included from the top-level Makefile.
#   make cluster-build   build/reuse etcd, kube-*, kubectl, kwok, kwokctl, helm (~30 min cold on 2 cores)
#   make cluster-up      hub + eu-de + eu-fr + us-tx; kubeconfigs in .gridshift/kubeconfigs/<name>.yaml
#   make cluster-down    stop them (and reap worlds left behind by killed test runs)
#   make cluster-status  processes, RSS, node counts
# READY_DELAY=<seconds> overrides how long a scheduled pod takes to become Ready;
# CLUSTER_WORLD=<file> starts another world file than e2e/cluster/planes.yaml (make demo uses demo-planes.yaml).
PYTHON ?= .venv/bin/python
CLUSTER_PY := e2e/cluster/cluster.py
READY_DELAY ?=
CLUSTER_WORLD ?=

.PHONY: cluster-build cluster-up cluster-down cluster-status

cluster-build: ## build (or reuse from ~/.cache/gridshift/bin) every cluster binary from Go modules
	python3 $(CLUSTER_PY) build

cluster-up: setup cluster-build ## start hub + regional clusters (kwokctl, binary runtime)
	$(PYTHON) $(CLUSTER_PY) up $(if $(READY_DELAY),--ready-delay $(READY_DELAY)) $(if $(CLUSTER_WORLD),--world $(CLUSTER_WORLD))

cluster-down: setup ## stop every cluster started by cluster-up
	$(PYTHON) $(CLUSTER_PY) down

cluster-status: setup ## processes, RSS and node counts of the running world
	$(PYTHON) $(CLUSTER_PY) status
