"""The CRDs are generated from the models, structural, documented, and checked for staleness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import Field

from gridshift.api import crdgen
from gridshift.api.inference_deployment import InferenceDeployment, InferenceDeploymentSpec, SLOSpec
from gridshift.cli.crds import stale_files
from gridshift.cli.main import main
from tests.conftest import REPO_ROOT


def walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, schema)]
    for name, prop in schema.get("properties", {}).items():
        out += walk(prop, f"{path}.{name}")
    if "items" in schema:
        out += walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        out += walk(schema["additionalProperties"], f"{path}{{}}")
    return out


@pytest.mark.parametrize("kind", crdgen.KINDS, ids=lambda k: k.kind)
def test_schema_is_structural_and_documented(kind: crdgen.KindSpec) -> None:
    schema = crdgen.openapi_schema(kind.model)
    for path, node in walk(schema):
        for forbidden in ("$ref", "anyOf", "allOf", "oneOf", "title", "$defs"):
            assert forbidden not in node, f"{kind.kind}{path} has {forbidden}"
        assert "type" in node, f"{kind.kind}{path} has no type"
        if "properties" in node:
            assert node.get("additionalProperties") is None, f"{kind.kind}{path}: not structural"
            for name, prop in node["properties"].items():
                if (path, name) == ("", "metadata"):
                    continue  # the apiserver refuses anything but `type` on metadata
                assert prop.get("description"), f"{kind.kind}{path}.{name} has no description"


def test_cross_field_rules_become_cel_with_field_paths() -> None:
    schema = crdgen.openapi_schema(InferenceDeployment)
    capacity = schema["properties"]["spec"]["properties"]["capacity"]
    rules = {r["rule"]: r for r in capacity["x-kubernetes-validations"]}
    assert rules["self.minReplicas <= self.maxReplicas"]["fieldPath"] == ".minReplicas"


def test_optional_fields_are_nullable_and_defaults_are_kept() -> None:
    spec = crdgen.openapi_schema(InferenceDeployment)["properties"]["spec"]["properties"]
    assert spec["demand"]["properties"]["requestsPerSecond"]["nullable"] is True
    assert spec["capacity"]["properties"]["minReplicas"]["default"] == 1
    # All-default sub-objects default to their complete value, which must pass their own CEL rules.
    assert spec["capacity"]["default"] == {"minReplicas": 1, "maxReplicas": 8, "minRegions": 1}
    assert spec["engine"]["default"]["port"] == 8000

    assert spec["replica"]["properties"]["gpusPerReplica"]["enum"] == [1, 2, 4, 8]
    assert set(crdgen.openapi_schema(InferenceDeployment)["required"]) == {"spec"}


def test_exclusive_bounds_use_the_openapi_v3_0_form() -> None:
    slo = crdgen.openapi_schema(InferenceDeployment)["properties"]["spec"]["properties"]["slo"]["properties"]
    assert slo["ttftP95Ms"]["minimum"] == 0 and slo["ttftP95Ms"]["exclusiveMinimum"] is True


def test_printer_columns_and_short_names() -> None:
    crd = crdgen.crd_for(crdgen.KINDS[0])
    assert crd["spec"]["names"]["shortNames"] == ["idep"]
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["$/Mtok"] == ".status.cost.usdPerMillionTokens"
    assert columns["J/token"] == ".status.cost.joulesPerToken"


def test_crds_on_disk_are_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds", "--check", "--out", str(REPO_ROOT / "crds")]) == 0
    assert "up to date" in capsys.readouterr().out


def test_check_names_the_stale_file_when_a_model_changes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class ChangedSLO(SLOSpec):
        e2e_latency_p95_ms: float | None = Field(default=None, description="A field added to the model.")

    class ChangedSpec(InferenceDeploymentSpec):
        slo: ChangedSLO = Field(description="Latency objectives.")

    class Changed(InferenceDeployment):
        spec: ChangedSpec = Field(description="Desired state, owned by the user.")

    changed = crdgen.KindSpec(**{**crdgen.KINDS[0].__dict__, "model": Changed})
    monkeypatch.setattr(crdgen, "KINDS", (changed, *crdgen.KINDS[1:]))
    assert stale_files(REPO_ROOT / "crds") == [str(REPO_ROOT / "crds" / "gridshift.dev_inferencedeployments.yaml")]
    assert main(["crds", "--check", "--out", str(REPO_ROOT / "crds")]) == 1
    assert "gridshift.dev_inferencedeployments.yaml differs" in capsys.readouterr().err


def test_check_reports_missing_and_extra_files(tmp_path: Path) -> None:
    assert main(["crds", "--out", str(tmp_path)]) == 0
    assert stale_files(tmp_path) == []
    (tmp_path / "gridshift.dev_gpuprofiles.yaml").unlink()
    (tmp_path / "leftover.yaml").write_text("{}")
    assert stale_files(tmp_path) == [
        str(tmp_path / "gridshift.dev_gpuprofiles.yaml"),
        str(tmp_path / "leftover.yaml"),
    ]


def test_generated_yaml_round_trips() -> None:
    for text in crdgen.render_crds().values():
        crd = yaml.safe_load(text)
        assert crd["kind"] == "CustomResourceDefinition"


def test_writing_removes_the_crds_no_longer_generated_so_that_check_passes_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Review: --check reports every YAML it does not generate, but writing left them: after a kind was renamed
    # `gridshift crds` then `gridshift crds --check` failed for ever.
    assert main(["crds", "--out", str(tmp_path)]) == 0
    (tmp_path / "gridshift.dev_gpuprofiles.yaml").rename(tmp_path / "gridshift.dev_oldkinds.yaml")
    (tmp_path / "notes.yaml").write_text("kind: ConfigMap\n")
    assert main(["crds", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr()
    assert f"removed {tmp_path / 'gridshift.dev_oldkinds.yaml'}" in err.out
    assert f"stale: {tmp_path / 'notes.yaml'} is not generated from the API models; remove it" in err.err
    assert not (tmp_path / "gridshift.dev_oldkinds.yaml").exists() and (tmp_path / "notes.yaml").exists()
    (tmp_path / "notes.yaml").unlink()
    assert main(["crds", "--check", "--out", str(tmp_path)]) == 0


def test_check_gives_the_advice_writing_follows_for_a_file_it_does_not_generate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found in review: --check told to run `gridshift crds` for a stray bad.yaml, which writing leaves, naming it
    # to remove. Now --check says what writing says; and that writing removes an orphaned CRD of this group.
    assert main(["crds", "--out", str(tmp_path)]) == 0
    (tmp_path / "bad.yaml").write_text("kind: ConfigMap\n")
    (tmp_path / "gridshift.dev_gpuprofiles.yaml").rename(tmp_path / "gridshift.dev_oldkinds.yaml")
    capsys.readouterr()
    assert main(["crds", "--check", "--out", str(tmp_path)]) == 1
    checked = capsys.readouterr().err
    assert f"stale: {tmp_path / 'bad.yaml'} is not generated from the API models; remove it" in checked, checked
    assert f"stale: {tmp_path / 'gridshift.dev_oldkinds.yaml'} is no longer generated" in checked, checked
    assert f"{tmp_path / 'gridshift.dev_gpuprofiles.yaml'} differs from the API models; run `gridshift crds`" in checked
    assert main(["crds", "--out", str(tmp_path)]) == 1
    assert f"stale: {tmp_path / 'bad.yaml'} is not generated from the API models; remove it" in capsys.readouterr().err


def test_an_empty_out_is_refused_not_taken_for_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found in review: `crds --out ''` wrote the CRDs into the current directory without a word.
    monkeypatch.chdir(tmp_path)
    for check in ([], ["--check"]):
        with pytest.raises(SystemExit) as refused:
            main(["crds", *check, "--out", ""])
        assert refused.value.code == 2
        assert "argument --out: empty path" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_out_must_be_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Review: a file given as --out was a FileExistsError traceback, and --check read it as a folder.
    (tmp_path / "crds.yaml").write_text("")
    for check in ([], ["--check"]):
        assert main(["crds", *check, "--out", str(tmp_path / "crds.yaml")]) == 2
        assert f"--out {tmp_path / 'crds.yaml'} is not a directory" in capsys.readouterr().err


def test_an_unreadable_crd_file_is_named_stale_or_unwritable_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found in review: a CRD file that was not UTF-8, or a folder in its place, was a traceback from --check; and
    # writing named the folder (--out X: Is a directory) instead of the file.
    assert main(["crds", "--out", str(tmp_path)]) == 0
    (tmp_path / "gridshift.dev_gpuprofiles.yaml").write_bytes(b"\xff\xfe")
    (tmp_path / "gridshift.dev_regionalclusters.yaml").unlink()
    (tmp_path / "gridshift.dev_regionalclusters.yaml").mkdir()
    assert main(["crds", "--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"stale: {tmp_path / 'gridshift.dev_gpuprofiles.yaml'} (unreadable: not UTF-8)" in err
    assert f"stale: {tmp_path / 'gridshift.dev_regionalclusters.yaml'} (unreadable: Is a directory)" in err
    assert main(["crds", "--out", str(tmp_path)]) == 2
    folder = tmp_path / "gridshift.dev_regionalclusters.yaml"
    assert f"cannot write {folder}: Is a directory" in capsys.readouterr().err
