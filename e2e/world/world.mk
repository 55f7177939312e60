# The simulated world (issue 6): vLLM fleet + DCGM on the kwok pods of `make cluster-up`, price feeds,
# one clock. Included from the top-level Makefile.
#   make world-up     start it in the background (endpoints in .gridshift/sim-world.json, log in .gridshift/sim-world.log)
#   make world-down   stop it
# WORLD_SPEED=<sim s per real s> (default 360), WORLD_RATE=<requests/s per deployment> (default 10),
# WORLD_START=<UTC time in 2024> (default 2024-06-03T00:00:00Z), WORLD_TICK=<simulated s per step> (default
# speed/180 within [0.25, 2]), WORLD_CATCH_UP=0 keeps that step when the simulation trails the clock,
# WORLD_PROMETHEUS=1 also starts a private Prometheus scraping the world.
PYTHON ?= .venv/bin/python
WORLD_SPEED ?= 360
WORLD_RATE ?= 10
WORLD_START ?=
WORLD_TICK ?=
WORLD_CATCH_UP ?= 1
WORLD_PROMETHEUS ?=
WORLD_PID := .gridshift/sim-world.pid

.PHONY: world-up world-down world-status

world-up: setup ## start the simulated world over the clusters of `make cluster-up`
	@mkdir -p .gridshift
	@if [ -f $(WORLD_PID) ] && kill -0 $$(cat $(WORLD_PID)) 2>/dev/null; then echo "world already running (pid $$(cat $(WORLD_PID)))"; exit 0; fi
	@rm -f .gridshift/sim-world.json
	@nohup $(PYTHON) -m e2e.world run --speed $(WORLD_SPEED) --rate $(WORLD_RATE) $(if $(WORLD_START),--start $(WORLD_START)) $(if $(WORLD_TICK),--tick $(WORLD_TICK)) $(if $(filter 0,$(WORLD_CATCH_UP)),--no-catch-up) $(if $(WORLD_PROMETHEUS),--prometheus) \
	  > .gridshift/sim-world.log 2>&1 & echo $$! > $(WORLD_PID)
	@for i in $$(seq 1 60); do [ -f .gridshift/sim-world.json ] && break; sleep 0.5; done
	@if [ -f .gridshift/sim-world.json ]; then cat .gridshift/sim-world.json; else echo "world did not start; see .gridshift/sim-world.log"; tail -20 .gridshift/sim-world.log; exit 1; fi

world-down: ## stop the simulated world
	@if [ -f $(WORLD_PID) ]; then kill $$(cat $(WORLD_PID)) 2>/dev/null || true; rm -f $(WORLD_PID); fi
	@echo "world stopped"

world-status: ## clock, replicas and loads of the running world
	@if [ -f .gridshift/sim-world.json ]; then curl -s $$(python3 -c 'import json;print(json.load(open(".gridshift/sim-world.json"))["control"])')/status | python3 -m json.tool | head -40; else echo "world not running"; fi
