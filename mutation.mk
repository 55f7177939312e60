# Mutation testing of the safety-critical core (issue 22). Included from the top-level Makefile.
#   make mutation          every mutant of the modules in tests/mutation/modules.toml (~15 min on 2 cores)
#   make mutation-sample   a fixed-seed sample per module, as CI runs it (a few minutes)
# Both print a score table and the surviving mutants, and fail when a module is below its threshold.
# The work folder is .mutation/ (mutmut's copy of the tree is .mutation/mutants/).
# MUTATION_ARGS passes more options, e.g. MUTATION_ARGS='--keep --jobs 1'; MUTATION_SEED=n draws another sample.
MUTATION_ARGS ?=

.PHONY: mutation mutation-sample mutation-clean

mutation: setup ## mutation-test every mutant of tests/mutation/modules.toml; fails below a module's threshold
	$(PYTHON) tests/mutation/run.py $(MUTATION_ARGS)

mutation-sample: setup ## the same on a fixed-seed sample per module (what CI runs)
	$(PYTHON) tests/mutation/run.py --sample $(MUTATION_ARGS)

mutation-clean:
	rm -rf .mutation
