"""pytest plugin for mutation runs (`-p tests.mutation.hypothesis_profile`): the same examples every run.

Each mutant runs the tests in a fresh fork; with hypothesis' example database shared through
`.hypothesis/`, one mutant's counterexample would be replayed against the next, so a kill would
depend on the order mutants ran in. Derandomised and without a database, a test kills a mutant or
not, every time; the property tests' own `max_examples` still apply.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("mutation", derandomize=True, database=None, print_blob=False)
settings.load_profile("mutation")
