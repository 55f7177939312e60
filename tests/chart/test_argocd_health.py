"""The Argo CD health check (docs/gitops/inferencedeployment-health.lua) on status fixtures.

Run with Lua 5.1 (the language of gopher-lua, Argo CD's interpreter) and 5.4, whichever are
installed (`apt-get install lua5.1 lua5.4`); the script's `obj` is the fixture as a Lua table.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from .conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "docs" / "gitops" / "inferencedeployment-health.lua"
INTERPRETERS = [name for name in ("lua5.1", "lua5.4") if shutil.which(name)]


def lua_literal(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(item) for item in value) + "}"
    return "{" + ", ".join(f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in value.items()) + "}"


def health(interpreter: str, obj: dict[str, Any]) -> tuple[str, str]:
    program = (
        f"obj = {lua_literal(obj)}\n"
        f"local function check()\n{SCRIPT.read_text()}\nend\n"
        "local hs = check()\nio.write(hs.status, '\\n', hs.message or '', '\\n')\n"
    )
    proc = subprocess.run([interpreter, "-"], input=program, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    status, message = proc.stdout.split("\n", 1)
    return status, message.rstrip("\n")


def idep(generation: int = 3, observed: int | None = 3, **conditions: str | tuple[str, str, str]) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": []}
    if observed is not None:
        status["observedGeneration"] = observed
    for type_, value in conditions.items():
        state, reason, message = value if isinstance(value, tuple) else (value, "Some", "")
        status["conditions"].append({"type": type_, "status": state, "reason": reason, "message": message})
    return {
        "apiVersion": "gridshift.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": "llama", "namespace": "llm", "generation": generation},
        "status": status,
    }


CASES = [
    ("no status", {"metadata": {"name": "x", "generation": 1}}, "Progressing", "Waiting for the gridshift operator"),
    ("spec newer than status", idep(generation=4, observed=3, Ready="True"), "Progressing", "generation 4"),
    ("ready", idep(Ready=("True", "AllReplicasReady", "4/4 ready in eu-de")), "Healthy", "4/4 ready in eu-de"),
    (
        "migrating wins over ready",
        idep(Ready="True", Migrating=("True", "CheaperRegion", "eu-de -> eu-fr step 2/4")),
        "Progressing",
        "Migrating (CheaperRegion): eu-de -> eu-fr step 2/4",
    ),
    ("starting", idep(Ready=("False", "ReplicasStarting", "1/4 ready")), "Progressing", "1/4 ready"),
    (
        "failed",
        idep(Ready=("False", "InsufficientCapacity", "no region has 8 free H100")),
        "Degraded",
        "no region has 8 free H100",
    ),
    ("slo at risk", idep(Ready="True", SLOAtRisk=("True", "TTFTAboveSLO", "p95 TTFT 1.9 s")), "Degraded", "p95 TTFT"),
    ("slo fine", idep(Ready=("True", "AllReplicasReady", "ok"), SLOAtRisk="False"), "Healthy", "ok"),
    (
        "advisory and stale prices are named",
        idep(Ready="True", Advisory=("True", "WouldMove", "eu-fr is cheaper"), PriceFeedStale=("True", "Stale", "")),
        "Healthy",
        "Advisory (WouldMove): eu-fr is cheaper; PriceFeedStale (Stale)",
    ),
    ("ready unknown", idep(Ready="Unknown"), "Progressing", "Ready"),
    ("no ready condition", idep(MetricsStale="True"), "Progressing", "Waiting for the Ready condition"),
]


@pytest.mark.skipif(not INTERPRETERS, reason="no Lua interpreter (apt-get install lua5.1 lua5.4)")
@pytest.mark.parametrize("interpreter", INTERPRETERS)
@pytest.mark.parametrize(("case", "obj", "expected_status", "expected_message"), CASES, ids=[c[0] for c in CASES])
def test_health(interpreter: str, case: str, obj: dict[str, Any], expected_status: str, expected_message: str) -> None:
    status, message = health(interpreter, obj)
    assert status == expected_status
    assert expected_message in message


def test_argocd_cm_patch_embeds_the_script() -> None:
    patch = yaml.safe_load((SCRIPT.parent / "argocd-cm-health.yaml").read_text())
    assert patch["data"]["resource.customizations.health.gridshift.dev_InferenceDeployment"] == SCRIPT.read_text()
