"""The mutation-testing configuration is valid before CI's sampled run needs it (no mutmut run here)."""

from __future__ import annotations

import random
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
