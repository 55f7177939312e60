"""The mutation-testing configuration is valid before CI's sampled run needs it (no mutmut run here)."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from pathlib import Path

import pytest

from tests.mutation import run
from tests.mutation.probes import PROBES, REPO


def test_modules_toml_names_existing_modules_and_tests() -> None:
    modules, per_module, _seed = run.load_modules()
    assert {m.path for m in modules} >= {
        "gridshift/planner/migration.py",
        "gridshift/planner/capacity.py",
        "gridshift/signals/entsoe.py",
        "gridshift/service/migrate.py",
    }
    assert all(m.threshold >= 0.9 for m in modules)
    assert per_module > 0


def test_every_equivalent_mutant_belongs_to_a_listed_module_and_says_why() -> None:
    modules, _, _ = run.load_modules()
    equivalents = run.load_equivalents()
    for name, equivalent in equivalents.items():
        assert run.module_of(name, modules) is not None, name
        assert "__mutmut_" in name and equivalent.line and len(equivalent.reason) > 20, name


def test_every_equivalent_mutant_still_changes_its_stored_line() -> None:
    # CI's mutation run checks this against the mutants mutmut writes, minutes in; a rename in a mutated
    # line (capacity.py's tpot_p95_ms, mutant 83) once left an entry stale past every check of `make test`.
    modules, _, _ = run.load_modules()
    problems = run.stale_equivalents(run.load_equivalents(), modules)
    assert not problems, run.out_of_date(problems)


def test_a_survivor_is_reported_at_the_line_it_changes_in_the_original_file() -> None:
    # The report's "SURVIVED ... (operator/<path>:LINE)" is function_line + changed_lines' offset; it once pointed
    # one below for a decorated method (CapacityInputs.of's mutants at a blank line). Checked on the mutants of
    # every function with an equivalent entry, plus a decorated method's (made in memory, as mutmut writes them).
    modules, _, _ = run.load_modules()
    wanted = set(run.load_equivalents())
    wanted |= {f"gridshift.planner.capacity.xǁCapacityInputsǁof__mutmut_{i}" for i in (1, 2, 3)}
    assert all(run.module_of(name, modules) is not None for name in wanted)
    by_module = run.functions_by_module(wanted, modules)
    sources = run.mutants_in_memory(modules, by_module)
    checked = 0
    for module in modules:
        original = run.source_lines(run.original_source(module))
        for name in sorted(by_module.get(module.path, ())):
            found = run.changed_lines(sources[module.path], name)
            assert found is not None, name
            offset, lines = found
            removed = [line[1:] for line in lines if line.startswith("-")]
            if not removed:  # a default on the def line: nothing in the body changed
                continue
            line = run.function_line(module, name) + offset
            assert original[line - 1].strip() == removed[0].strip(), (module.path, name, line, original[line - 1])
            checked += 1
    assert checked >= len(wanted) - 2, checked


def test_a_stale_equivalent_is_reported_with_the_mutant_the_stored_line_and_the_line_it_now_changes() -> None:
    modules, _, _ = run.load_modules()
    listed = run.load_equivalents()
    name = "gridshift.planner.migration.x_migration_steps__mutmut_3"
    entry = listed[name]
    gone = "gridshift.planner.migration.x_migration_steps__mutmut_100000"
    renamed = "gridshift.planner.migration.x_no_such_function__mutmut_1"
    stale = {
        name: dataclasses.replace(entry, line="if all(target.get(None, 0) == n for k, n in wanted.items()) and all("),
        gone: dataclasses.replace(entry, mutant=gone),
        renamed: dataclasses.replace(entry, mutant=renamed),
    }
    assert run.stale_equivalents(stale, modules) == [
        f"{gone}: no such mutant any more (the function changed); review the entry",
        f"{name}: stored line 'if all(target.get(None, 0) == n for k, n in wanted.items()) and all(', "
        f"but the mutant now changes [{entry.line!r}] (the function changed); review the entry",
        f"{renamed}: no such mutant any more (the function changed); review the entry",
    ]


SAMPLE = """\
LIMIT = 3


def first(a, b):
    if a > b and b != 0:  # pragma: no mutate
        return a - b
    return a + b * 2


class Fleet:
    size = 4

    def of(self, n):
        def inner(x):
            return x + 1

        return [inner(i) for i in range(n) if i < LIMIT]

    @staticmethod
    def scale(v):
        return v * 2.5 or None


class Region:
    def of(self, name):
        return {"name": name, "weight": 10}.get("name", "none")


async def last(items):
    return sum(i for i in items if i % 2 == 0)
"""


def test_the_in_memory_mutants_are_the_ones_mutmut_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # mutants_in_memory renders only the mutants asked for, numbering them as mutmut's internals (3.8.1) do;
    # a mutmut that numbers or mutates otherwise must fail here, not leave stale entries passing.
    from mutmut.configuration import reset_config
    from mutmut.mutation.file_mutation import mutate_file_contents

    module = run.Module("gridshift/sample.py", 0.9, ())
    (tmp_path / "pyproject.toml").write_text('[tool.mutmut]\nsource_paths = ["src"]\n')
    monkeypatch.chdir(tmp_path)
    reset_config()
    try:
        whole = mutate_file_contents(f"src/{module.path}", SAMPLE)
    finally:
        reset_config()
    monkeypatch.undo()
    names = set(whole.mutant_names)
    assert {n.rpartition("__mutmut_")[0] for n in names} == {
        "x_first",
        "xǁFleetǁof",
        "xǁFleetǁscale",
        "xǁRegionǁof",
        "x_last",
    }
    beyond = {f"{base}__mutmut_{n + 1}" for base, n in Counter(n.rpartition("__mutmut_")[0] for n in names).items()}
    made = run.mutants_in_memory([module], {module.path: names | beyond}, read=lambda _: SAMPLE)[module.path]

    def seen(found: tuple[int, list[str]] | None) -> tuple[int, list[str]] | None:
        # Methods come out unindented in memory: compare what equivalent_problems compares, stripped lines.
        return None if found is None else (found[0], [line[0] + line[1:].strip() for line in found[1]])

    for name in sorted(names | beyond):
        assert seen(run.changed_lines(made, name)) == seen(run.changed_lines(whole.code, name)), name
    assert all(run.changed_lines(made, name) is None for name in beyond)


def test_a_broken_modules_file_is_refused_naming_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "modules.toml"
    path.write_text('[[module]]\npath = "gridshift/planner/nope.py"\nthreshold = 0.9\ntests = []\n')
    with pytest.raises(run.SetupError, match=r"module\[0\]\.path: operator/gridshift/planner/nope\.py does not exist"):
        run.load_modules(path)
    path.write_text('[[module]]\npath = "gridshift/planner/capacity.py"\nthreshold = 90\ntests = []\n')
    with pytest.raises(run.SetupError, match=r"module\[0\]\.threshold: 90.0 is not a fraction"):
        run.load_modules(path)


def test_an_equivalent_without_a_reason_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "equivalent.toml"
    path.write_text('[[equivalent]]\nmutant = "gridshift.planner.migration.x_f__mutmut_1"\nline = "x"\nreason = " "\n')
    with pytest.raises(run.SetupError, match=r"equivalent\[0\]\.reason: empty"):
        run.load_equivalents(path)


def test_the_sample_is_the_same_for_a_seed_and_per_module() -> None:
    modules, _, _ = run.load_modules()
    names = [f"{m.dotted}.x_f__mutmut_{i}" for m in modules for i in range(1, 200)]
    random.Random(1).shuffle(names)
    first = run.choose_sample(names, modules, 10, seed=22)
    assert first == run.choose_sample(sorted(names), modules, 10, seed=22)
    assert len(first) == 10 * len(modules)
    assert first != run.choose_sample(names, modules, 10, seed=23)


def test_the_generated_mutmut_config_reads_from_the_work_folder() -> None:
    modules, _, _ = run.load_modules()
    config = run.mutmut_config(modules)
    assert 'source_paths = ["src/gridshift"]' in config
    assert '"src/gridshift/planner/migration.py"' in config
    for module in modules:
        for test in module.tests:
            assert f'"{test}"' in config


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.what)
def test_each_probe_still_matches_its_line_once(probe: object) -> None:
    assert isinstance(probe, type(PROBES[0]))
    assert (REPO / "operator" / probe.path).read_text().count(probe.old) == 1
