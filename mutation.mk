# Mutation testing of the safety-critical core (issue 22). Included from the top-level Makefile.
#   make mutation          every mutant of the modules in tests/mutation/modules.toml (2567; on 2 busy cores the 1924
#                          of planner/ and signals/ took ~12 min, the 643 of service/ 1-3 min, run apart)
#   make mutation-sample   a fixed-seed sample of 60 per module, as CI runs it (300 mutants; 1.5-2 min wall, 85 s CPU on 2 busy cores)
#   make mutation-probes   re-apply issue 22's mutants by hand and check that the named tests fail
# mutation and mutation-sample print a score table and the surviving mutants, and fail when a module is below its threshold.
# The work folder is .mutation/ (mutmut's copy of the tree is .mutation/mutants/).
# MUTATION_ARGS passes more options, e.g. MUTATION_ARGS='--keep --jobs 1'; MUTATION_SEED=n draws another sample.
MUTATION_ARGS ?=

.PHONY: mutation mutation-sample mutation-probes mutation-clean

mutation: setup ## mutation-test every mutant of tests/mutation/modules.toml; fails below a module's threshold
	$(PYTHON) tests/mutation/run.py $(MUTATION_ARGS)

mutation-sample: setup ## the same on a fixed-seed sample per module (what CI runs)
	$(PYTHON) tests/mutation/run.py --sample $(MUTATION_ARGS)

mutation-probes: setup ## break the code as issue 22 listed, one mutant at a time; each named test must fail
	$(PYTHON) tests/mutation/probes.py

mutation-clean:
	rm -rf .mutation
