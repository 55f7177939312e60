"""The planner is pure: it imports no I/O, cluster or GPU library and reads no clock."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.planner.planner_world import REPO
from tests.python_source import parse

PLANNER = REPO / "operator" / "gridshift" / "planner"
FORBIDDEN_MODULES = {
    "kopf",
    "kubernetes",
    "prometheus_api_client",
    "pynvml",
    "httpx",
    "aiohttp",
    "requests",
    "urllib3",
    "socket",
    "subprocess",
    "os",
    "pathlib",
    "io",
    "shutil",
    "time",
    "urllib",
    "http",
    "asyncio",
    "yaml",
}
FORBIDDEN_CALLS = {"open", "print", "input"}
CLOCK_ATTRIBUTES = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


def planner_sources() -> list[Path]:
    sources = sorted(PLANNER.glob("*.py"))
    assert sources, PLANNER
    return sources


@pytest.mark.parametrize("path", planner_sources(), ids=lambda p: p.name)
def test_planner_module_imports_and_calls_nothing_impure(path: Path) -> None:
    tree = parse(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN_MODULES, f"{path.name} imports {name}"
        if isinstance(node, ast.Call):
            function = node.func
            if isinstance(function, ast.Name):
                assert function.id not in FORBIDDEN_CALLS, f"{path.name} calls {function.id}()"
            if isinstance(function, ast.Attribute) and function.attr in CLOCK_ATTRIBUTES:
                owner = function.value
                owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
                assert owner_name not in {"datetime", "date", "time"}, f"{path.name} reads the clock"


def test_importing_the_planner_loads_no_io_library() -> None:
    code = (
        "import sys, gridshift.planner, gridshift.planner.synthetic\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'kopf','kubernetes','prometheus_api_client','pynvml','httpx','aiohttp','requests','urllib3'})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_import_linter_contracts_hold() -> None:
    linter = Path(sys.executable).parent / "lint-imports"
    if not linter.exists() and shutil.which("lint-imports") is None:
        pytest.skip("import-linter not installed")
    result = subprocess.run(
        [str(linter) if linter.exists() else "lint-imports", "--contract", "pure-core"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
