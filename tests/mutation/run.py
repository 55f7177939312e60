"""Mutation testing of the safety-critical core with mutmut, for `make mutation` / `make mutation-sample`.

mutmut 3 copies the source tree into `mutants/` and derives each mutant's module name from its path,
stripping a leading `src/`. Our source root is `operator/` (not a package: it would shadow the stdlib
`operator`), so the run happens in a work folder, `.mutation/`, where `src` links to `operator/` and
`tests`, `e2e` link to theirs; its pyproject.toml is ours plus a generated `[tool.mutmut]` section.
Mutated modules are then `gridshift.planner.migration` etc., as the tests import them.

The module list, thresholds and test files come from `modules.toml`; equivalent mutants (listed in
`equivalent_mutants.toml` with a reason and the mutated line) are left out of the score; those lines
are checked against mutants made in memory (test_config.py, and here before mutmut starts) and against
the ones mutmut wrote (after the run). `--sample` tests a fixed-seed sample per module (CI); the
default tests every mutant.
Exits 1 when a module is below its threshold, 2 on a set-up or configuration error.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import functools
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORK = REPO / ".mutation"
LINKS = ("src", "tests", "e2e", "examples")
"""Work-folder links: src -> operator/ (the name mutmut strips from module names), tests, e2e (its
cluster plugin is imported by tests/conftest.py, with GRIDSHIFT_SKIP_CLUSTER=1 it starts nothing),
examples (the service tests' GPUProfile, read from the repository root)."""

DETECTED = {"killed", "timeout"}
"""A mutant that makes a test fail or hang is caught; `timeout` is mutmut's CPU-time limit."""


class SetupError(Exception):
    """The configuration or the run itself is broken (not a low score)."""


@dataclass(frozen=True)
class Module:
    path: str
    """Under operator/, e.g. gridshift/planner/migration.py."""
    threshold: float
    tests: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")


@dataclass(frozen=True)
class Equivalent:
    mutant: str
    line: str
    reason: str


@dataclass
class Tally:
    module: Module
    statuses: Counter[str] = field(default_factory=Counter)
    equivalent: int = 0
    survivors: list[str] = field(default_factory=list)

    @property
    def scored(self) -> int:
        return sum(self.statuses.values())

    @property
    def detected(self) -> int:
        return sum(n for status, n in self.statuses.items() if status in DETECTED)

    @property
    def score(self) -> float:
        return self.detected / self.scored if self.scored else 1.0


def load_modules(path: Path = HERE / "modules.toml") -> tuple[list[Module], int, int]:
    data = tomllib.loads(path.read_text())
    modules = []
    for index, entry in enumerate(data.get("module", [])):
        where = f"{path.name}: module[{index}]"
        try:
            module = Module(str(entry["path"]), float(entry["threshold"]), tuple(str(t) for t in entry["tests"]))
        except KeyError as error:
            raise SetupError(f"{where}: missing {error.args[0]!r}") from error
        if not (REPO / "operator" / module.path).is_file():
            raise SetupError(f"{where}.path: operator/{module.path} does not exist")
        if not 0 < module.threshold <= 1:
            raise SetupError(f"{where}.threshold: {module.threshold} is not a fraction in (0, 1]")
        for test in module.tests:
            if not (REPO / test).is_file():
                raise SetupError(f"{where}.tests: {test} does not exist")
        modules.append(module)
    if not modules:
        raise SetupError(f"{path.name}: no [[module]]")
    sample = data.get("sample", {})
    return modules, int(sample.get("per_module", 60)), int(sample.get("seed", 0))


def load_equivalents(path: Path = HERE / "equivalent_mutants.toml") -> dict[str, Equivalent]:
    data = tomllib.loads(path.read_text())
    found: dict[str, Equivalent] = {}
    for index, entry in enumerate(data.get("equivalent", [])):
        where = f"{path.name}: equivalent[{index}]"
        try:
            equivalent = Equivalent(str(entry["mutant"]), str(entry["line"]).strip(), str(entry["reason"]).strip())
        except KeyError as error:
            raise SetupError(f"{where}: missing {error.args[0]!r}") from error
        if not equivalent.reason:
            raise SetupError(f"{where}.reason: empty; say why no test can tell this mutant apart")
        if equivalent.mutant in found:
            raise SetupError(f"{where}.mutant: {equivalent.mutant} is listed twice")
        found[equivalent.mutant] = equivalent
    return found


def mutmut_config(modules: list[Module]) -> str:
    """The [tool.mutmut] section appended to a copy of pyproject.toml in the work folder."""
    tests = sorted({t for m in modules for t in m.tests})

    def toml_list(values: list[str]) -> str:
        return "[" + ", ".join(f'"{v}"' for v in values) + "]"

    return "\n".join(
        [
            "",
            "# Generated by tests/mutation/run.py from tests/mutation/modules.toml: edit that file, not this one.",
            "[tool.mutmut]",
            'source_paths = ["src/gridshift"]',
            f"only_mutate = {toml_list([f'src/{m.path}' for m in modules])}",
            f"pytest_add_cli_args_test_selection = {toml_list(tests)}",
            # Same examples on every run and no example database shared between mutants: a kill does
            # not depend on which mutant ran before.
            'pytest_add_cli_args = ["-p", "tests.mutation.hypothesis_profile", "-p", "no:cacheprovider"]',
            'also_copy = ["e2e/cluster", "examples"]',
            "",
        ]
    )


def prepare(modules: list[Module], *, fresh: bool) -> None:
    WORK.mkdir(exist_ok=True)
    for name in LINKS:
        link = WORK / name
        target = Path("..") / ("operator" if name == "src" else name)
        if link.is_symlink() and os.readlink(link) == str(target):
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)
    pyproject = mutmut_pyproject(modules)
    config = WORK / "pyproject.toml"
    if not config.exists() or config.read_text() != pyproject:
        config.write_text(pyproject)
    if fresh and (WORK / "mutants").exists():
        # mutmut keeps results while a function's source is unchanged, even when the tests changed.
        shutil.rmtree(WORK / "mutants")


def environment() -> dict[str, str]:
    env = dict(os.environ)
    # mutmut puts .mutation/mutants/src first on sys.path; an explicit source root would compete with it.
    env.pop("PYTHONPATH", None)
    env["GRIDSHIFT_SKIP_CLUSTER"] = "1"
    env.setdefault("GRIDSHIFT_SHARED_DATA", str((REPO.parent / "shared" / "data").resolve()))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def mutmut_executable() -> str:
    beside = Path(sys.executable).parent / "mutmut"
    found = str(beside) if beside.exists() else shutil.which("mutmut")
    if not found:
        raise SetupError("mutmut is not installed: `make setup` installs the dev extra (pip install -e '.[dev]')")
    return found


def run_mutmut(names: list[str], log: Path, *, max_children: int) -> None:
    """`mutmut run [names]` with its spinner sent to `log`; prints progress every 20 s."""
    command = [mutmut_executable(), "run", "--max-children", str(max_children), *names]
    started = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=WORK, env=environment(), stdout=out, stderr=subprocess.STDOUT)
        last = started
        while process.poll() is None:
            time.sleep(1.0)
            if time.monotonic() - last >= 20:
                last = time.monotonic()
                print(f"  {progress(log)} ({last - started:.0f} s)", flush=True)
    if process.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SetupError(f"mutmut run exited {process.returncode}; end of {log}:\n{tail}")


def progress(log: Path) -> str:
    with log.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 400))
        tail = handle.read().decode(errors="replace")
    counts = re.findall(r"(\d+)/(\d+)\s", tail)
    if counts:
        done, total = counts[-1]
        return f"{done}/{total} mutants tested"
    return "generating mutants and timing the tests"


def results() -> dict[str, str]:
    """Status of every generated mutant, from `mutmut results --all true`."""
    done = subprocess.run(
        [mutmut_executable(), "results", "--all", "true"],
        cwd=WORK,
        env=environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SetupError(f"mutmut results exited {done.returncode}: {done.stderr[-2000:]}")
    statuses = {}
    for line in done.stdout.splitlines():
        match = re.match(r"^\s*(\S+__mutmut_\d+): (.+)$", line)
        if match:
            statuses[match.group(1)] = match.group(2).strip()
    return statuses


def module_of(mutant: str, modules: list[Module]) -> Module | None:
    for module in modules:
        if mutant.startswith(module.dotted + "."):
            return module
    return None


def mutmut_pyproject(modules: list[Module]) -> str:
    """The work folder's pyproject.toml: ours plus the generated [tool.mutmut] section."""
    return (REPO / "pyproject.toml").read_text() + mutmut_config(modules)


@functools.cache
def mutated_file(path: Path) -> str:
    """A file of mutmut's `mutants/` copy, read once: they are large (one copy of a function per mutant)."""
    return path.read_text()


@functools.cache
def mutated_functions(source: str) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """The functions (by name) of a mutated file's source; parsed once per source."""
    return {
        node.name: node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


@functools.cache
def source_lines(source: str) -> list[str]:
    """Lines as ast numbers them (from 1: index 0 is line 1), ends dropped."""
    return re.split(r"\r\n|\r|\n", source)


def changed_lines(source: str, name: str) -> tuple[int, list[str]] | None:
    """What mutant `name` (x_f__mutmut_3, xǁClassǁf__mutmut_3) changes in a mutated module's `source`.

    (lines from the def line to the first changed one, changed lines as '-old' / '+new'), from its
    function against the `__mutmut_orig` copy mutmut writes beside it; None when there is no such
    mutant. The one reading of "what line does this mutant change": the real run's mutants/ files and
    the in-memory generation of `equivalent_problems` both go through here.
    """
    functions = mutated_functions(source)
    orig_name = name.rpartition("__mutmut_")[0] + "__mutmut_orig"
    if name not in functions or orig_name not in functions:
        return None

    lines_of_source = source_lines(source)

    def body(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
        # ast.get_source_segment without the def line (it differs by name only), from lines split once:
        # get_source_segment splits the whole (large) source on every call.
        lines = lines_of_source[node.lineno : node.end_lineno]
        if lines and node.end_col_offset is not None:  # the offset counts UTF-8 bytes
            lines[-1] = lines[-1].encode()[: node.end_col_offset].decode()
        return lines

    original, changed = body(functions[orig_name]), body(functions[name])
    lines = [
        line
        for line in difflib.unified_diff(original, changed, lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    opcodes = difflib.SequenceMatcher(a=original, b=changed).get_opcodes()
    offset = next((i1 for tag, i1, _i2, _j1, _j2 in opcodes if tag != "equal"), 0)
    return 1 + offset, lines


def mutant_diff(mutant: str, module: Module) -> tuple[int, list[str]]:
    """(line in the original file, changed lines as '-old' / '+new') of one mutant, from the mutated file."""
    mutated = WORK / "mutants" / "src" / module.path
    name = mutant.removeprefix(module.dotted + ".")
    found = changed_lines(mutated_file(mutated), name)
    if found is None:
        raise SetupError(f"{mutant}: not found in {mutated}")
    offset, lines = found
    return function_line(module, name) + offset, lines


def split_mangled(mangled: str) -> tuple[str | None, str]:
    """(class or None, function) of a mutant's function: x_f__mutmut_3 or xǁClassǁf__mutmut_3."""
    base = mangled.rpartition("__mutmut_")[0] or mangled
    if base.startswith("x_"):
        return None, base[2:]
    _, owner, function = base.split("ǁ")
    return owner, function


def function_line(module: Module, mangled: str) -> int:
    """Line of the original function's def in operator/<path> (x_f or xǁClassǁf)."""
    owner, wanted = split_mangled(mangled)
    tree = ast.parse((REPO / "operator" / module.path).read_text())
    scopes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == owner] if owner else [tree]
    for scope in scopes:
        for node in scope.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == wanted:
                return node.lineno  # the def line: decorators have lines of their own in the ast (3.8+)
    return 0


def equivalent_problems(
    equivalents: dict[str, Equivalent], modules: list[Module], mutated_source: Callable[[Module], str]
) -> dict[str, str]:
    """Listed mutant -> why its entry is stale: it is gone, or it no longer changes the recorded line.

    `mutated_source` gives a module's mutated source: the real run's mutants/ file, or
    `mutants_in_memory`'s (make test, in seconds).
    """
    problems = {}
    for equivalent in equivalents.values():
        module = module_of(equivalent.mutant, modules)
        if module is None:
            problems[equivalent.mutant] = f"{equivalent.mutant}: not a mutant of a module in modules.toml"
            continue
        found = changed_lines(mutated_source(module), equivalent.mutant.removeprefix(module.dotted + "."))
        if found is None:
            problems[equivalent.mutant] = (
                f"{equivalent.mutant}: no such mutant any more (the function changed); review the entry"
            )
            continue
        added = [line[1:].strip() for line in found[1] if line.startswith("+")]
        if equivalent.line not in added:
            problems[equivalent.mutant] = (
                f"{equivalent.mutant}: stored line {equivalent.line!r}, but the mutant now changes {added!r} "
                "(the function changed); review the entry"
            )
    return problems


def check_equivalents(equivalents: dict[str, Equivalent], modules: list[Module], statuses: dict[str, str]) -> None:
    """Every listed mutant still exists, still makes the recorded change, and (when run) was not killed."""
    problems = equivalent_problems(equivalents, modules, lambda m: mutated_file(WORK / "mutants" / "src" / m.path))
    for name in equivalents:
        if name not in problems and statuses.get(name) in DETECTED:
            problems[name] = f"{name}: listed as equivalent but a test kills it; remove the entry"
    if problems:
        raise SetupError(out_of_date(list(problems.values())))


def out_of_date(problems: list[str]) -> str:
    return "equivalent_mutants.toml is out of date:\n  " + "\n  ".join(problems)


def original_source(module: Module) -> str:
    return (REPO / "operator" / module.path).read_text()


def mutants_in_memory(
    modules: list[Module], functions: dict[str, set[str]], read: Callable[[Module], str] = original_source
) -> dict[str, str]:
    """Module path -> the named mutants ({x_f__mutmut_3, xǁClassǁf__mutmut_7, ...}) of that module, each with
    its function's `__mutmut_orig` copy, as mutmut writes them to mutants/, made in memory by mutmut's code.

    mutmut's mutate_file_contents renders every mutant of a module (half a minute for ours); here only the
    named ones are (see render_mutants). mutmut's config() (do_not_mutate_patterns) is read from the cwd:
    from a copy of the work folder's pyproject.toml here.
    """
    mutmut = mutmut_generator()
    sources = {}
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "pyproject.toml").write_text(mutmut_pyproject(modules))
        try:
            with contextlib.chdir(folder):
                mutmut.reset_config()
                if mutmut.config().mutate_only_covered_lines:
                    raise SetupError("mutate_only_covered_lines: mutants_in_memory cannot tell which lines run")
            for module in modules:
                if functions.get(module.path):
                    sources[module.path] = render_mutants(mutmut, module, read(module), functions[module.path])
        finally:
            mutmut.reset_config()  # mutmut keeps config() in a global: leave none read from a folder that is gone
    return sources


def mutmut_generator() -> SimpleNamespace:
    """The parts of mutmut (3.8.1, mutmut.mutation.file_mutation: internals, not an API) that make mutants.

    A mutmut that moved them fails here, one that changed what they do fails test_config's comparison
    with its mutate_file_contents: neither passes silently.
    """
    try:
        import libcst  # mutmut's parser
        from mutmut.configuration import config, reset_config
        from mutmut.mutation.file_mutation import (
            create_mutations,
            function_trampoline_arrangement,
            group_by_top_level_node,
        )
        from mutmut.mutation.trampoline_templates import mangle_function_name
    except ImportError as error:
        raise SetupError(
            f"cannot import mutmut's generator ({error}): `make setup` installs mutmut; if it is installed, its "
            "internals moved: mutants_in_memory was written against mutmut 3.8.1's mutmut.mutation.file_mutation"
        ) from error
    return SimpleNamespace(
        libcst=libcst,
        config=config,
        reset_config=reset_config,
        create_mutations=create_mutations,
        function_trampoline_arrangement=function_trampoline_arrangement,
        group_by_top_level_node=group_by_top_level_node,
        mangle_function_name=mangle_function_name,
    )


def render_mutants(mutmut: SimpleNamespace, module: Module, code: str, wanted: set[str]) -> str:
    """The `wanted` mutants of `code`, each beside its function's `__mutmut_orig` copy.

    As mutate_file_contents: create_mutations finds the mutations; combine_mutations_to_source groups them
    by function (group_by_top_level_node), goes through the module's functions and its classes' methods,
    and renders each group with function_trampoline_arrangement, mutant n being the group's n-th. Here
    only the wanted n-th is rendered (alone, so it comes out as `__mutmut_1` and is renamed).
    """
    cst = mutmut.libcst
    tree, mutations, _, _ = mutmut.create_mutations(f"src/{module.path}", code)
    groups = mutmut.group_by_top_level_node(mutations)
    parts = []
    for owner, function in top_level_functions(tree, cst):
        mangled = mutmut.mangle_function_name(name=function.name.value, class_name=owner)
        group = groups.get(function, [])
        for name in sorted(wanted):
            base, _, number = name.rpartition("__mutmut_")
            if base != mangled or not number.isdigit() or not 1 <= int(number) <= len(group):
                continue
            _, nodes, _, _ = mutmut.function_trampoline_arrangement(
                function, [group[int(number) - 1]], class_name=owner
            )
            by_name = {node.name.value: node for node in nodes if isinstance(node, cst.FunctionDef)}
            mutant = by_name[f"{mangled}__mutmut_1"].with_changes(name=cst.Name(name))
            parts += [tree.code_for_node(by_name[f"{mangled}__mutmut_orig"]), tree.code_for_node(mutant)]
    return "\n".join(parts)


def top_level_functions(tree: Any, cst: Any) -> Iterator[tuple[str | None, Any]]:
    """(class or None, FunctionDef) of the functions mutmut mutates: top-level ones and top-level classes' methods."""
    for statement in tree.body:
        if isinstance(statement, cst.FunctionDef):
            yield None, statement
        elif isinstance(statement, cst.ClassDef) and isinstance(statement.body, cst.IndentedBlock):
            for method in statement.body.body:
                if isinstance(method, cst.FunctionDef):
                    yield statement.name.value, method


def functions_by_module(mutants: Iterable[str], modules: list[Module]) -> dict[str, set[str]]:
    """Module path -> the mutants' names within it (x_f__mutmut_3), as mutants_in_memory takes them; mutants of
    no listed module are left out (equivalent_problems reports those)."""
    functions: dict[str, set[str]] = {}
    for name in mutants:
        module = module_of(name, modules)
        if module is not None:
            functions.setdefault(module.path, set()).add(name.removeprefix(module.dotted + "."))
    return functions


def stale_equivalents(equivalents: dict[str, Equivalent], modules: list[Module]) -> list[str]:
    """`equivalent_problems` against mutants generated in memory: no mutmut run, a few seconds."""
    sources = mutants_in_memory(modules, functions_by_module(equivalents, modules))
    return sorted(equivalent_problems(equivalents, modules, lambda m: sources[m.path]).values())


def choose_sample(names: list[str], modules: list[Module], per_module: int, seed: int) -> list[str]:
    chosen = []
    for module in modules:
        candidates = sorted(n for n in names if module_of(n, modules) is module)
        rng = random.Random(f"{seed}:{module.path}")
        chosen += sorted(rng.sample(candidates, min(per_module, len(candidates))))
    return chosen


def tally(
    modules: list[Module], statuses: dict[str, str], equivalents: dict[str, Equivalent], only: set[str] | None
) -> list[Tally]:
    tallies = {m.path: Tally(m) for m in modules}
    for mutant, status in sorted(statuses.items()):
        module = module_of(mutant, modules)
        if module is None or (only is not None and mutant not in only):
            continue
        entry = tallies[module.path]
        if mutant in equivalents:
            entry.equivalent += 1
            continue
        if status == "not checked":
            raise SetupError(f"{mutant} was not checked: the run stopped early (see .mutation/mutmut.log)")
        entry.statuses[status] += 1
        if status not in DETECTED:
            entry.survivors.append(mutant)
    return list(tallies.values())


def report(tallies: list[Tally], *, sampled: bool, equivalents_total: dict[str, int]) -> bool:
    print()
    print(
        f"{'module':<36} {'killed':>7} {'timeout':>7} {'survived':>8} {'no tests':>8} "
        f"{'scored':>7} {'equiv.':>6} {'score':>7} {'needs':>6}"
    )
    ok = True
    for entry in tallies:
        passed = entry.score >= entry.module.threshold
        ok &= passed
        equivalent = f"{entry.equivalent}" if not sampled else f"({equivalents_total.get(entry.module.path, 0)})"
        print(
            f"{entry.module.path:<36} {entry.statuses['killed']:>7} {entry.statuses['timeout']:>7} "
            f"{entry.statuses['survived']:>8} {entry.statuses['no tests']:>8} {entry.scored:>7} {equivalent:>6} "
            f"{entry.score:>6.1%} {entry.module.threshold:>6.0%}  {'ok' if passed else 'BELOW THRESHOLD'}"
        )
    others = sorted({s for e in tallies for s in e.statuses} - {"killed", "timeout", "survived", "no tests"})
    if others:
        print("other statuses (counted as surviving): " + ", ".join(others))
    if sampled:
        print("(sampled run: equivalent mutants are never drawn; the figure in brackets is the module's total)")
    for entry in tallies:
        for mutant in entry.survivors:
            line, lines = mutant_diff(mutant, entry.module)
            print(f"\nSURVIVED {mutant}  (operator/{entry.module.path}:{line})")
            for changed in lines:
                print(f"    {changed.strip()}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", action="store_true", help="test a fixed-seed sample of each module's mutants")
    parser.add_argument("--per-module", type=int, help="sample size per module (default: modules.toml)")
    parser.add_argument("--seed", type=int, help="sample seed (default: MUTATION_SEED or modules.toml)")
    parser.add_argument("--keep", action="store_true", help="reuse .mutation/mutants and its cached results")
    parser.add_argument("--only", help="only the modules whose path contains this text (while iterating)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="mutants tested in parallel")
    args = parser.parse_args(argv)
    try:
        modules, per_module, seed = load_modules()
        if args.only:
            modules = [m for m in modules if args.only in m.path]
            if not modules:
                raise SetupError(f"--only {args.only!r}: no module in modules.toml matches")
        equivalents = load_equivalents()
        if args.only:
            equivalents = {n: e for n, e in equivalents.items() if module_of(n, modules)}
        if args.per_module is not None:
            per_module = args.per_module
        seed = args.seed if args.seed is not None else int(os.environ.get("MUTATION_SEED", seed))
        stale = stale_equivalents(equivalents, modules)
        if stale:  # in seconds, before minutes of mutmut (check_equivalents looks again at what it wrote)
            raise SetupError(out_of_date(stale))
        prepare(modules, fresh=not args.keep)
        log = WORK / "mutmut.log"
        started = time.monotonic()
        cpu_started = os.times()
        print(f"mutation testing {', '.join(m.path for m in modules)} with mutmut (log: {log.relative_to(REPO)})")
        only: set[str] | None = None
        if args.sample:
            # The first mutant of every function: generates all mutants and times the tests, then
            # `mutmut results` can name them all for the draw.
            run_mutmut(["*__mutmut_1"], log, max_children=args.jobs)
            names = sorted(n for n in results() if n not in equivalents)
            sample = choose_sample(names, modules, per_module, seed)
            print(f"sample: {per_module} mutants per module, seed {seed} ({len(sample)} in all)")
            run_mutmut(sample, log, max_children=args.jobs)
            only = set(sample)
        else:
            run_mutmut([], log, max_children=args.jobs)
        statuses = results()
        check_equivalents(equivalents, modules, statuses)
        tallies = tally(modules, statuses, equivalents, only)
        totals = Counter(m.path for name in equivalents if (m := module_of(name, modules)))
        ok = report(tallies, sampled=args.sample, equivalents_total=dict(totals))
        ended = os.times()
        cpu = (ended.children_user + ended.children_system) - (cpu_started.children_user + cpu_started.children_system)
        print(f"\n{time.monotonic() - started:.0f} s wall, {cpu:.0f} s CPU in mutmut and its workers")
        if not ok:
            print("mutation score below threshold: kill the survivors above with a test, or, when no test can")
            print("tell one apart, list it in tests/mutation/equivalent_mutants.toml with the reason")
        return 0 if ok else 1
    except SetupError as error:
        print(f"mutation: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
