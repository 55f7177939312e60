"""The operator needs only the runtime dependencies: matplotlib (plots), nvidia-ml-py (NVML) and the
profiler are optional extras, never imported when the operator or the `gridshift` command starts,
and a command that needs an absent extra says which to install (the image has none of them)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import REPO_ROOT

OPTIONAL = ("matplotlib", "pynvml")
"""Distributions' modules the operator image does not carry."""
NOT_AT_START = (*OPTIONAL, "gridshift.profiling", "gridshift.nvml", "gridshift.simulation", "gridshift_dev")

BLOCKER = f"""
import importlib.abc, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OPTIONAL!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Absent())
"""
"""Makes the optional packages absent in a child interpreter, as in the operator image."""


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env={"PYTHONPATH": str(REPO_ROOT / "operator"), "PATH": "/usr/bin:/bin"},
    )


def test_runtime_dependencies_leave_out_the_optional_extras() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"])
    for distribution in ("matplotlib", "nvidia-ml-py"):
        assert distribution not in runtime
    extras = project["optional-dependencies"]
    assert any("matplotlib" in d for d in extras["plot"])
    assert any("nvidia-ml-py" in d for d in extras["nvml"]) and any("nvidia-ml-py" in d for d in extras["profile"])


def test_the_operator_and_the_command_start_without_the_extras() -> None:
    proc = run_python(
        "import gridshift.shell.handlers, gridshift.service.wiring\n"
        "from gridshift.cli.main import build_parser\n"
        "build_parser()\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {OPTIONAL!r} "
        f"or m.startswith({NOT_AT_START!r})))\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_plot_without_matplotlib_names_the_extra_before_replaying(tmp_path: Path) -> None:
    proc = run_python(
        "from gridshift.cli.main import main\nsys.exit(main(sys.argv[1:]))",
        "simulate",
        "--days",
        "1",
        "--plot",
        str(tmp_path / "replay.png"),
    )
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'gridshift[plot]'" in proc.stderr
    assert not (tmp_path / "replay.png").exists()


def test_nvml_without_its_package_names_the_extra() -> None:
    proc = run_python(
        "from gridshift.nvml.sampler import NvmlPowerReader, NvmlUnavailable, SamplerSettings\n"
        "try:\n    NvmlPowerReader(SamplerSettings())\nexcept NvmlUnavailable as error:\n    print(error)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'gridshift[nvml]'" in proc.stdout
