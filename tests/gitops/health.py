"""Argo CD's health-check test semantics and kstatus, run on gridshift objects; and the recorded testdata.

Argo CD keeps a health check as `resource_customizations/<group>/<kind>/health.lua` beside a
`health_test.yaml` whose tests name an `inputPath` under `testdata/` and the exact `healthStatus`
(status and message) the script must return; its own test (argo-cd util/lua, TestLuaHealthScript) runs
each with the object as the global `obj` and compares both fields. `argo_health` does the same with a
real Lua interpreter: 5.1 is the language of gopher-lua, Argo CD's interpreter; 5.4 catches scripts that
lean on one dialect. `kstatus` classifies objects with sigs.k8s.io/cli-utils' kstatus library, as Flux
does, through the Go-built e2e/cluster/kstatus-check.

The testdata are statuses the real operator wrote (tests/e2e/test_health_cases.py on the real control
planes, tests/gitops/test_recorded_status.py through the service harness), normalised by `recorded`:
only name, namespace and generation of metadata, fixed timestamps, a short price horizon.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO_ROOT

CUSTOMIZATIONS = REPO_ROOT / "docs" / "gitops" / "resource_customizations" / "gridshift.dev"
KINDS = ("InferenceDeployment", "RegionalCluster")
INTERPRETERS = [name for name in ("lua5.1", "lua5.4") if shutil.which(name)]
ARGO_HEALTH = frozenset({"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"})
"""The health codes Argo CD accepts from a script (anything else is an error in Argo CD)."""
RECORD_ENV = "GRIDSHIFT_RECORD_TESTDATA"
"""Set to 1 to rewrite the testdata from what the operator writes now, instead of comparing with it."""
FIXED_TIME = "2024-06-03T10:00:00Z"
_TIME_KEYS = frozenset({"lastTransitionTime", "time", "startedAt", "lastPriceFetch", "priceHorizonEnd", "start"})


@dataclass(frozen=True)
class Case:
    """One recorded status and what Argo CD and kstatus must make of it."""

    kind: str
    name: str
    argo: str
    kstatus: str
    source: str
    """Where it is recorded: e2e (the operator process on real control planes), harness, or derived."""

    @property
    def path(self) -> Path:
        return CUSTOMIZATIONS / self.kind / "testdata" / f"{self.name}.yaml"


CASES = (
    Case("InferenceDeployment", "healthy", "Healthy", "Current", "e2e"),
    Case("InferenceDeployment", "starting", "Progressing", "InProgress", "e2e"),
    Case("InferenceDeployment", "migrating", "Progressing", "InProgress", "e2e"),
    Case("InferenceDeployment", "capacity-short", "Degraded", "Failed", "e2e"),
    Case("InferenceDeployment", "infeasible", "Degraded", "Failed", "e2e"),
    Case("InferenceDeployment", "forbidden", "Degraded", "Failed", "e2e"),
    Case("InferenceDeployment", "advisory", "Suspended", "Current", "e2e"),
    Case("InferenceDeployment", "frozen", "Suspended", "Current", "e2e"),
    Case("InferenceDeployment", "slo-at-risk", "Degraded", "Failed", "harness"),
    Case("InferenceDeployment", "route-held", "Degraded", "Failed", "harness"),
    Case("InferenceDeployment", "spec-changed", "Progressing", "InProgress", "derived"),
    Case("InferenceDeployment", "no-status", "Progressing", "Current", "derived"),
    Case("RegionalCluster", "reachable", "Healthy", "Current", "e2e"),
    Case("RegionalCluster", "kubeconfig-invalid", "Degraded", "Failed", "e2e"),
    Case("RegionalCluster", "price-feed-stale", "Degraded", "Failed", "harness"),
    Case("RegionalCluster", "metrics-ambiguous", "Degraded", "Current", "harness"),
)
"""Every case, with its intended classification. kstatus has no Suspended: Advisory and Frozen deployments
are Current (nothing is left for gridshift to do), as Argo CD's Suspended does not hold a sync wave back.
A brand-new object without status is Current for kstatus (its generic rule for objects without
conditions) while Argo CD waits for the operator. A RegionalCluster whose metrics cannot be told from another's
(MetricsAmbiguous) is Degraded in Argo CD, for the user to act on, and Current for kstatus: it is Ready and
not Stalled (gridshift uses it; only its deployments' demand goes unread), so a Flux wave is not held back."""


def case(kind: str, name: str) -> Case:
    return next(c for c in CASES if (c.kind, c.name) == (kind, name))


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


def argo_health(interpreter: str, kind: str, obj: dict[str, Any]) -> dict[str, str]:
    """The health.lua of `kind` run on `obj` as Argo CD runs it: `obj` global, the script's returned table.

    Argo CD's VM opens no os/io libraries for health scripts in production: the script runs with them
    removed here too. The result is {"status", "message"} as Argo CD's HealthStatus (message "" when nil)."""
    script = (CUSTOMIZATIONS / kind / "health.lua").read_text()
    program = (
        "local write = io.write\n"
        f"obj = {lua_literal(obj)}\n"
        "os, io, require, dofile, loadfile = nil, nil, nil, nil, nil\n"
        f"local function check()\n{script}\nend\n"
        "local hs = check()\n"
        "write(tostring(hs.status), '\\n', hs.message or '')\n"
    )
    proc = subprocess.run([interpreter, "-"], input=program, capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{interpreter}: {kind} health.lua failed: {proc.stderr}")
    status, _, message = proc.stdout.partition("\n")
    if status not in ARGO_HEALTH:
        raise AssertionError(f"{interpreter}: {status!r} is not a valid Argo CD health status")
    return {"status": status, "message": message}


def health_tests(kind: str) -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = yaml.safe_load((CUSTOMIZATIONS / kind / "health_test.yaml").read_text())["tests"]
    return tests


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def kstatus_binary() -> Path:
    from gscluster import build

    return build.bin_dir() / build.KSTATUS_CHECK


def kstatus(objects: list[dict[str, Any]]) -> list[dict[str, str]]:
    """kstatus' classification of each object (Current, InProgress, Failed, ...), by the Go-built checker."""
    proc = subprocess.run(
        [str(kstatus_binary())], input=json.dumps(objects), capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"kstatus-check failed: {proc.stderr}")
    results: list[dict[str, str]] = json.loads(proc.stdout)
    return results


def recorded(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as the operator left it, as testdata: metadata reduced to name, namespace and generation,
    timestamps fixed, the price horizon cut to two points (the health checks read none of them)."""
    meta = obj.get("metadata") or {}
    out: dict[str, Any] = {
        "apiVersion": obj.get("apiVersion", "gridshift.dev/v1alpha1"),
        "kind": obj["kind"],
        "metadata": {k: meta[k] for k in ("name", "namespace", "generation") if k in meta},
        "spec": obj.get("spec") or {},
    }
    if obj.get("status"):
        status = _fix_times(obj["status"])
        if "priceHorizon" in status:
            status["priceHorizon"] = status["priceHorizon"][:2]
        out["status"] = status
    return out


def _fix_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: FIXED_TIME if k in _TIME_KEYS and isinstance(v, str) else _fix_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fix_times(v) for v in value]
    return value


def essence(obj: dict[str, Any]) -> dict[str, Any]:
    """What must stay the same when a case is recorded again: mode, generation observed, each condition's
    status and reason, and where the cost comes from (messages and figures may change)."""
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    return {
        "kind": obj.get("kind"),
        "mode": status.get("mode"),
        "observed": status.get("observedGeneration") == generation if status else None,
        "conditions": {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions") or []},
        "cost": (status.get("cost") or {}).get("source"),
    }


def recording() -> bool:
    return os.environ.get(RECORD_ENV, "").strip() in ("1", "true", "yes")


def check_or_record(item: Case, obj: dict[str, Any]) -> None:
    """Compare a freshly recorded object with its testdata (their essence), or rewrite the testdata."""
    fresh = recorded(obj)
    if recording():
        header = f"# Recorded from the gridshift operator ({item.source}); regenerate with {RECORD_ENV}=1.\n"
        item.path.parent.mkdir(parents=True, exist_ok=True)
        item.path.write_text(header + yaml.safe_dump(fresh, sort_keys=False, width=120))
        return
    if not item.path.exists():
        raise AssertionError(f"{item.path} missing: record it with {RECORD_ENV}=1")
    stored = load(item.path)
    assert essence(fresh) == essence(stored), (
        f"{item.kind}/{item.name}: the operator now writes {essence(fresh)}, the testdata hold {essence(stored)}; "
        f"if intended, record again with {RECORD_ENV}=1 and update health_test.yaml"
    )


def derived(healthy: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Cases made from the recorded healthy object: a spec newer than its status, and no status yet."""
    changed = recorded(healthy)
    changed["metadata"]["generation"] = changed["metadata"]["generation"] + 1
    fresh = recorded(healthy)
    fresh.pop("status", None)
    return {"spec-changed": changed, "no-status": fresh}
