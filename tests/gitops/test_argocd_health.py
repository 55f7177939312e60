"""Argo CD health checks in Argo CD's own layout (docs/gitops/resource_customizations/gridshift.dev/<kind>/),
run with real Lua interpreters against Argo CD's test semantics: each test of health_test.yaml, on its
testdata (statuses the operator wrote), must return exactly its healthStatus. The statuses themselves are
what each case is meant to be (tests/gitops/health.py: CASES)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from gridshift_dev.chart import render_argocd_health_patch
from tests.gitops import health

pytestmark = pytest.mark.skipif(not health.INTERPRETERS, reason="no Lua interpreter (apt-get install lua5.1 lua5.4)")

TESTS = [(kind, test) for kind in health.KINDS for test in health.health_tests(kind)]


@pytest.mark.parametrize("interpreter", health.INTERPRETERS)
@pytest.mark.parametrize(("kind", "test"), TESTS, ids=[f"{k}/{t['inputPath']}" for k, t in TESTS])
def test_health_test_yaml_as_argo_cd_runs_it(interpreter: str, kind: str, test: dict[str, Any]) -> None:
    obj = health.load(health.CUSTOMIZATIONS / kind / test["inputPath"])
    assert health.argo_health(interpreter, kind, obj) == test["healthStatus"]


def test_every_case_is_tested_with_its_intended_health() -> None:
    """health_test.yaml covers every recorded case, each with the health its case is meant to have, and every
    testdata file is a case (so that regenerated testdata cannot silently change what Argo CD shows)."""
    for kind in health.KINDS:
        tested = {t["inputPath"]: t["healthStatus"]["status"] for t in health.health_tests(kind)}
        cases = {f"testdata/{c.name}.yaml": c.argo for c in health.CASES if c.kind == kind}
        assert tested == cases, kind
        on_disk = {f"testdata/{p.name}" for p in (health.CUSTOMIZATIONS / kind / "testdata").glob("*.yaml")}
        assert on_disk == set(cases), kind


def test_messages_say_the_condition_behind_the_health() -> None:
    for kind in health.KINDS:
        for test in health.health_tests(kind):
            obj = health.load(health.CUSTOMIZATIONS / kind / test["inputPath"])
            found = {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}
            message = test["healthStatus"]["message"]
            expected = found.get("Stalled", {}) if test["healthStatus"]["status"] == "Degraded" else {}
            if kind == "InferenceDeployment" and expected.get("status") == "True":
                assert message.startswith(expected["reason"] + ": "), message
            elif found.get("Ready") and obj["status"].get("observedGeneration") == obj["metadata"].get("generation"):
                assert message.startswith(found["Ready"]["reason"]) or "Reconciling" in found, message


def test_the_derived_cases_are_their_recorded_source_changed_as_named() -> None:
    healthy = health.load(health.case("InferenceDeployment", "healthy").path)
    for name, made in health.derived(healthy).items():
        assert health.recorded(made) == health.load(health.case("InferenceDeployment", name).path), name


def test_argocd_cm_patch_embeds_both_scripts() -> None:
    patch = yaml.safe_load((health.CUSTOMIZATIONS.parents[1] / "argocd-cm-health.yaml").read_text())
    for kind in health.KINDS:
        script = (health.CUSTOMIZATIONS / kind / "health.lua").read_text()
        assert patch["data"][f"resource.customizations.health.gridshift.dev_{kind}"] == script
    assert render_argocd_health_patch({"X": "return {}\n"}).endswith("gridshift.dev_X: |\n    return {}\n")


def test_health_test_yaml_is_rewritten_when_recording() -> None:
    """With GRIDSHIFT_RECORD_TESTDATA=1, health_test.yaml is rewritten from the testdata: each message as the
    script gives it, each status checked against its case's intent first (a wrong status stops the run)."""
    if not health.recording():
        pytest.skip(f"{health.RECORD_ENV} not set")
    interpreter = health.INTERPRETERS[0]
    for kind in health.KINDS:
        tests = []
        for item in (c for c in health.CASES if c.kind == kind):
            result = health.argo_health(interpreter, kind, health.load(item.path))
            assert result["status"] == item.argo, (item.name, result)
            tests.append({"healthStatus": result, "inputPath": f"testdata/{item.name}.yaml"})
        text = yaml.safe_dump({"tests": tests}, sort_keys=False, width=200)
        (health.CUSTOMIZATIONS / kind / "health_test.yaml").write_text(text)
