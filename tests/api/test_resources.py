"""Every example is accepted; every bad resource is refused naming the field at fault."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes.utils import parse_quantity
from pydantic import ValidationError

from gridshift.api import API_VERSION, GROUP, InferenceDeployment, MigrationMode
from gridshift.api.common import QUANTITY, quantity_value
from gridshift.api.inference_deployment import InferenceDeploymentSpec
from gridshift.api.validation import InvalidResource, validate_object
from gridshift.cli.main import main
from tests.conftest import REPO_ROOT

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.yaml"))
BAD = sorted((REPO_ROOT / "tests" / "fixtures" / "bad_crs").glob("*.yaml"))


def gridshift_documents(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return [d for d in docs if str(d.get("apiVersion", "")).startswith(f"{GROUP}/")]


def expected_path(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: <field path>'"
    return first.removeprefix("# expect: ").strip()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid(path: Path) -> None:
    for doc in gridshift_documents(path):
        validate_object(doc)


def test_examples_cover_every_kind() -> None:
    kinds = {d["kind"] for p in EXAMPLES for d in gridshift_documents(p)}
    assert kinds == {"InferenceDeployment", "RegionalCluster", "GPUProfile"}


def test_there_are_at_least_twenty_bad_resources() -> None:
    assert len(BAD) >= 20


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_resource_is_refused_naming_the_field(path: Path) -> None:
    (doc,) = gridshift_documents(path)
    with pytest.raises(InvalidResource) as caught:
        validate_object(doc)
    paths = [p for p, _ in caught.value.problems]
    assert expected_path(path) in paths, f"{path.name}: expected {expected_path(path)}, got {paths}"
    assert expected_path(path) in str(caught.value)


def test_a_python_field_name_gets_the_wire_name_and_nan_is_named() -> None:
    # Found in review: `min_replicas: 5` and `ttftP95Ms: "500"` validated ok (the models' Python names and
    # coercion), while kubectl refuses both; the fixtures above are checked against a real apiserver too.
    (doc,) = gridshift_documents(REPO_ROOT / "tests" / "fixtures" / "bad_crs" / "idep-python-field-name.yaml")
    with pytest.raises(InvalidResource) as caught:
        validate_object(doc)
    assert ("spec.capacity.min_replicas", "unknown field (did you mean minReplicas?)") in caught.value.problems
    doc = yaml.safe_load((REPO_ROOT / "examples" / "inferencedeployment-qwen-advisory.yaml").read_text())
    doc["spec"]["slo"]["ttftP95Ms"] = float("nan")
    with pytest.raises(InvalidResource) as caught:
        validate_object(doc)
    ((field, message),) = caught.value.problems
    assert field == "spec.slo.ttftP95Ms" and "not a number JSON can carry" in message


def test_yaml_only_values_and_keys_are_named_not_tracebacks() -> None:
    # Found in review: !!binary and an unquoted date as a key were TypeError tracebacks in gridshift validate.
    doc = yaml.safe_load((REPO_ROOT / "examples" / "inferencedeployment-qwen-advisory.yaml").read_text())
    doc["spec"]["engine"] = {"env": [{"name": "A", "value": b"hello"}]}
    doc["spec"][yaml.safe_load("2024-01-01")] = "x"
    with pytest.raises(InvalidResource) as caught:
        validate_object(doc)
    fields = dict(caught.value.problems)
    assert "!!binary" in fields["spec.engine.env[0].value"] and "quote it" in fields["spec.2024-01-01"]
    # What the apiserver refuses besides: an integer beyond int64, a label value that is not a string.
    doc = yaml.safe_load((REPO_ROOT / "examples" / "inferencedeployment-qwen-advisory.yaml").read_text())
    doc["spec"]["capacity"] = {"maxReplicas": 10**30}
    doc["metadata"]["labels"] = {"team": 1.0}
    with pytest.raises(InvalidResource) as caught:
        validate_object(doc)
    fields = dict(caught.value.problems)
    assert "64-bit" in fields["spec.capacity.maxReplicas"] and "quote" in fields["metadata.labels"]


def test_did_you_mean_names_only_a_field_the_api_has() -> None:
    doc = yaml.safe_load((REPO_ROOT / "examples" / "inferencedeployment-qwen-advisory.yaml").read_text())
    doc["spec"]["capacity"] = {"min_replicas": 1, "max_surge": 1}
    with pytest.raises(InvalidResource) as caught:
        validate_object(doc)
    fields = dict(caught.value.problems)
    assert fields["spec.capacity.min_replicas"] == "unknown field (did you mean minReplicas?)"
    assert fields["spec.capacity.max_surge"] == "unknown field"  # there is no maxSurge to suggest


def test_an_unquoted_yaml_time_validates_as_the_string_kubectl_sends() -> None:
    profile = next(p for p in EXAMPLES if any(d["kind"] == "GPUProfile" for d in gridshift_documents(p)))
    doc = next(d for d in gridshift_documents(profile) if d["kind"] == "GPUProfile")
    doc["spec"]["source"]["measuredAt"] = yaml.safe_load("2024-10-08T10:00:00Z")
    validate_object(doc)


def test_defaults_fill_in_what_users_leave_out() -> None:
    (doc,) = gridshift_documents(REPO_ROOT / "examples" / "inferencedeployment-qwen-advisory.yaml")
    idep = validate_object(doc)
    assert isinstance(idep, InferenceDeployment)
    assert idep.spec.engine.image.startswith("vllm/vllm-openai:v")
    assert idep.spec.migration.mode is MigrationMode.ADVISORY
    assert idep.spec.capacity.min_regions == 1


def test_wrong_api_version_and_kind_are_named() -> None:
    with pytest.raises(InvalidResource, match="apiVersion"):
        validate_object({"apiVersion": "v1", "kind": "InferenceDeployment"})
    with pytest.raises(InvalidResource, match="kind: must be one of"):
        validate_object({"apiVersion": "gridshift.dev/v1alpha1", "kind": "Pod"})


def test_validate_command_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", *map(str, EXAMPLES)]) == 0
    assert main(["validate", str(BAD[0])]) == 1
    assert expected_path(BAD[0]) in capsys.readouterr().err


def test_a_plain_y_or_n_is_a_boolean_as_kubectl_reads_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Seen on a real kube-apiserver 1.36 (4 December 2026): `namespace: n` in a Secret reference is refused
    # ("must be of type string": kubectl's YAML 1.1 reads a boolean); gridshift validate read "n" and said ok.
    path = tmp_path / "rc.yaml"
    example = (REPO_ROOT / "examples" / "regionalclusters.yaml").read_text().split("\n---\n")[0]
    path.write_text(example.replace("namespace: gridshift-system, key: kubeconfig", "namespace: n, key: kubeconfig"))
    assert main(["validate", str(path)]) == 1
    assert "spec.kubeconfigSecretRef.namespace" in capsys.readouterr().err
    path.write_text(example.replace("namespace: gridshift-system, key: kubeconfig", "namespace: 'n', key: kubeconfig"))
    assert main(["validate", str(path)]) == 0


def test_validate_command_names_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text("spec: [unclosed")
    assert main(["validate", str(broken)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        ({"name": "Llama_3 8B", "namespace": "ml-serving"}, "metadata.name: 'Llama_3 8B' is not a DNS subdomain"),
        ({"namespace": "ml-serving"}, "metadata.name: is required"),
        # Review: a name that is no string was called missing under a header that showed it.
        ({"name": 5, "namespace": "ml-serving"}, "metadata.name: must be a string, got int '5'"),
        ({"name": "llama", "namespace": "ML_Serving"}, "metadata.namespace: 'ML_Serving' is not a DNS label"),
    ],
)
def test_names_the_apiserver_refuses_are_refused_offline(metadata: dict[str, Any], words: str) -> None:
    # Review: only the spec was checked, so these validated "ok" and the apiserver refused them.
    idep = yaml.safe_load((REPO_ROOT / "examples" / "inferencedeployment-llama3-8b.yaml").read_text())
    with pytest.raises(InvalidResource, match=words):
        validate_object({**idep, "metadata": metadata})


def test_validate_refuses_duplicate_keys_and_empty_files_and_reads_past_an_unreadable_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Review: PyYAML kept the last of two `metadata:` keys, an empty file passed with no output, and one
    # unreadable file ended the run.
    example = (REPO_ROOT / "examples" / "inferencedeployment-llama3-8b.yaml").read_text()
    twice = tmp_path / "twice.yaml"
    twice.write_text(example + "\nmetadata:\n  name: other\n")
    assert main(["validate", str(twice)]) == 2
    assert "found duplicate key 'metadata'" in capsys.readouterr().err
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n---\n")
    assert main(["validate", str(empty)]) == 1
    assert "no documents" in capsys.readouterr().err
    good = tmp_path / "good.yaml"
    good.write_text(example)
    assert main(["validate", str(tmp_path / "missing.yaml"), str(good)]) == 2
    out = capsys.readouterr()
    assert "cannot read" in out.err and f"ok  {good}" in out.out


HEADER = "apiVersion: gridshift.dev/v1alpha1\nkind: InferenceDeployment\nmetadata: {name: x}\n"
LAUGHS = "".join(f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("spec: &s\n  a: *s\n", "alias *s refers to a node that contains it"),
        ("spec: {a: " + "[" * 600 + "]" * 600 + "}\n", "nested too deeply (more than 100 levels)"),
        # "Billion laughs": 9**9 nodes from about 500 bytes (it hung); kubectl refuses "excessive aliasing".
        ("x:\n  a0: &a0 [lol]\n" + LAUGHS, "excessive aliasing"),
    ],
    ids=["alias-inside-itself", "600-levels", "billion-laughs"],
)
def test_recursive_deep_or_exploding_yaml_is_refused_naming_the_file_not_a_traceback(
    body: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found in review: the first two were RecursionError tracebacks (exit 1), the third hung.
    path = tmp_path / "evil.yaml"
    path.write_text(HEADER + body)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"bad {path} is not valid YAML: {words}" in err and "Traceback" not in err
    aliases = tmp_path / "aliases.yaml"  # an alias used twice, as users write them, still reads
    aliases.write_text(HEADER + "spec: {a: &x [1, 2], b: *x, c: *x}\n")
    assert main(["validate", str(aliases)]) == 1
    assert "spec.b: unknown field" in capsys.readouterr().err


def test_an_object_that_contains_itself_is_invalid_not_a_recursion_error() -> None:
    idep = yaml.safe_load((REPO_ROOT / "examples" / "inferencedeployment-llama3-8b.yaml").read_text())
    idep["spec"]["loop"] = idep["spec"]
    with pytest.raises(InvalidResource, match="spec: nested too deeply"):
        validate_object(idep)


@pytest.mark.parametrize(
    "head",
    [
        "apiversion: gridshift.dev/v1alpha1\n",  # the key misspelled
        "apiVersion: gridshift.dv/v1alpha1\n",  # the group misspelled
        "",  # left out
    ],
)
def test_a_gridshift_kind_without_its_api_version_is_refused_not_skipped(
    head: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found in review: each was "skip ...: InferenceDeployment is not a gridshift.dev resource", exit 0.
    path = tmp_path / "typo.yaml"
    path.write_text(head + "kind: InferenceDeployment\nmetadata: {name: x}\nspec: {bogus: 1}\n")
    assert main(["validate", str(path)]) == 1
    assert "apiVersion: must be gridshift.dev/v1alpha1" in capsys.readouterr().err


def test_other_resources_are_still_skipped_and_a_missing_kind_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "others.yaml"
    path.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: v1\nmetadata: {name: y}\n---\n"
        "apiVersion: nvidia.com/v1\nkind: GPUProfile\nmetadata: {name: z}\n"  # another vendor's kind of that name
    )
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"skip {path}: ConfigMap is not a {GROUP} resource" in out
    assert f"skip {path}: <no kind> is not a {GROUP} resource" in out
    assert f"skip {path}: GPUProfile is not a {GROUP} resource" in out


@settings(max_examples=300, deadline=None)
@given(st.from_regex(QUANTITY, fullmatch=True).filter(lambda q: len(q) <= 32))  # the fields' maxLength
def test_quantity_value_reads_a_quantity_as_kubernetes_does(text: str) -> None:
    # The api layer's own reading (it may import no cluster library) against the kubernetes client's, given
    # our precision and rounded up to the nano as the apiserver's ParseQuantity rounds (the client does not).
    with localcontext(prec=64):
        expected = parse_quantity(text).quantize(Decimal("1e-9"), rounding=ROUND_CEILING)
    assert quantity_value(text) == expected


def test_quantity_value_rounds_up_to_the_nano_as_the_apiserver_does() -> None:
    # Found in review: the apiserver read 1073741823.9999999999 as 1Gi (admitted), the operator as less (refused).
    assert quantity_value("1073741823.9999999999") == 2**30
    assert quantity_value("1.0000000001") == Decimal("1.000000001")


@pytest.mark.parametrize(("memory", "admitted"), [("1Gi", True), ("1073741824", True), ("1.5Gi", True), ("1G", False)])
def test_memory_of_one_gib_is_the_least_admitted(memory: str, admitted: bool) -> None:
    body = {
        "model": {"servedName": "m", "source": "org/m"},
        "slo": {"ttftP95Ms": 500, "tpotP95Ms": 50},
        "replica": {"gpuTypes": ["NVIDIA-H100-80GB-HBM3"], "memory": memory},
    }
    try:
        InferenceDeploymentSpec.model_validate(body)
    except ValidationError as error:
        assert not admitted and "memory must be at least 1Gi" in str(error)
    else:
        assert admitted


def test_an_http_route_may_have_any_object_name() -> None:
    # Found in review: the DNS-label pattern refused route names such as "chat.v2", which Kubernetes allows.
    body = {
        "model": {"servedName": "m", "source": "org/m"},
        "slo": {"ttftP95Ms": 500, "tpotP95Ms": 50},
        "replica": {"gpuTypes": ["NVIDIA-H100-80GB-HBM3"]},
        "routing": {"httpRouteName": "chat.v2"},
    }
    assert InferenceDeploymentSpec.model_validate(body).routing.http_route_name == "chat.v2"


def _defaulted_fields(
    doc: Any, schema: dict[str, Any], path: tuple[str | int, ...] = (), *, defaulted: bool = True
) -> list[tuple[Any, ...]]:
    """Paths in `doc` whose parent is written and whose CRD schema gives no nullable, and a default (or,
    `defaulted=False`, none)."""
    out: list[tuple[Any, ...]] = []
    if isinstance(doc, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if ("default" in sub) == defaulted and not sub.get("nullable"):
                out.append((*path, name))
            if name in doc:
                out += _defaulted_fields(doc[name], sub, (*path, name), defaulted=defaulted)
    elif isinstance(doc, list) and doc and "items" in schema:
        out += _defaulted_fields(doc[0], schema["items"], (*path, 0), defaulted=defaulted)
    return out


def left_out_parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        doc = doc[part]
    return doc


def outcome(doc: dict[str, Any]) -> Any:
    try:
        return validate_object(doc)
    except InvalidResource as error:
        return error.problems


def test_a_null_on_a_field_with_a_default_is_pruned_as_the_apiserver_does() -> None:
    # Found in review: `carbon: null` (and 70-odd other fields with a CRD default) was refused here, "Input
    # should be an object", while the apiserver prunes the null, applies the default and admits the object.
    from gridshift.api.crdgen import openapi_schema
    from gridshift.api.validation import MODELS_BY_KIND

    checked = set()
    for doc in (d for p in EXAMPLES for d in gridshift_documents(p)):
        for path in _defaulted_fields(doc, openapi_schema(MODELS_BY_KIND[doc["kind"]])):
            nulled = copy.deepcopy(doc)
            left_out_parent(nulled, path)[path[-1]] = None
            left_out = copy.deepcopy(nulled)
            del left_out_parent(left_out, path)[path[-1]]
            # As if left out: the default applies (and then any rule on it, as the apiserver checks it).
            assert outcome(nulled) == outcome(left_out), path
            checked.add((doc["kind"], path))
    assert {("InferenceDeployment", ("spec", "carbon")), ("GPUProfile", ("spec", "gpusPerReplica"))} <= checked
    assert len(checked) >= 50  # every such field the examples reach (70-odd in all)


def test_a_null_on_a_field_without_a_default_is_pruned_as_the_apiserver_does() -> None:
    # Found in review: a null on a field without a default was refused here ("Input should be a valid
    # number"), while the apiserver prunes it as well: `offerings[0].hourlyCost: null` is admitted and stored
    # without the field. A required field nulled is then missing, refused naming it (as the apiserver does).
    from gridshift.api.crdgen import openapi_schema
    from gridshift.api.validation import MODELS_BY_KIND

    checked = set()
    for doc in (d for p in EXAMPLES for d in gridshift_documents(p)):
        for path in _defaulted_fields(doc, openapi_schema(MODELS_BY_KIND[doc["kind"]]), defaulted=False):
            if path[-1] in ("apiVersion", "kind", "metadata"):
                continue  # checked before the schema (test_validate_names_a_missing_api_version and its kin)
            nulled = copy.deepcopy(doc)
            left_out_parent(nulled, path)[path[-1]] = None
            left_out = copy.deepcopy(nulled)
            del left_out_parent(left_out, path)[path[-1]]
            assert outcome(nulled) == outcome(left_out), path
            checked.add((doc["kind"], path))
    assert ("RegionalCluster", ("spec", "offerings", 0, "hourlyCost")) in checked
    assert len(checked) >= 50


def test_a_null_hourly_cost_is_admitted_and_read_as_left_out() -> None:
    (cluster, *_) = (
        d
        for d in gridshift_documents(REPO_ROOT / "examples" / "regionalclusters.yaml")
        if d["kind"] == "RegionalCluster"
    )
    left_out = copy.deepcopy(cluster)
    del left_out["spec"]["offerings"][0]["hourlyCost"]
    cluster["spec"]["offerings"][0]["hourlyCost"] = None
    assert validate_object(cluster) == validate_object(left_out)


def test_a_null_on_a_required_field_is_refused_naming_it() -> None:
    (doc,) = gridshift_documents(REPO_ROOT / "examples" / "inferencedeployment-qwen-advisory.yaml")
    doc["spec"]["model"] = None
    with pytest.raises(InvalidResource) as caught:
        validate_object(doc)
    assert [path for path, _ in caught.value.problems] == ["spec.model"]
    assert "required" in str(caught.value).lower()


def test_a_whole_number_float_for_an_integer_is_the_integer_kubectl_sends() -> None:
    # Found in review: kubectl sends `minReplicas: 2.0` as 2 and the apiserver admits it; this refused it.
    (doc,) = gridshift_documents(REPO_ROOT / "examples" / "inferencedeployment-qwen-advisory.yaml")
    doc["spec"]["capacity"]["minReplicas"] = yaml.safe_load("2.0")
    doc["spec"]["replica"]["gpusPerReplica"] = 1.0
    idep = validate_object(doc)
    assert isinstance(idep, InferenceDeployment)
    assert idep.spec.capacity.min_replicas == 2 and type(idep.spec.capacity.min_replicas) is int
    doc["spec"]["capacity"]["minReplicas"] = 2.5
    doc["spec"]["model"]["servedName"] = 2.0  # a string field takes no number, whole or not
    with pytest.raises(InvalidResource) as caught:
        validate_object(doc)
    assert {path for path, _ in caught.value.problems} == {"spec.capacity.minReplicas", "spec.model.servedName"}


MEASURED_AT_REFUSED = [
    "2026-11-27 00:00:00",
    "2026-11-27T00:00:00",
    "2026-11-27T00:00",
    "2026-11-27T00:00:00+0000",
    "0",
    "2026-11-27T00:00:00+24:00",
    "2026-11-27T00:00:00-30:00",
    "2026-11-27T00:00:00+05:60",
    "0000-01-01T00:00:00Z",
]
"""measuredAt values one side refused and the other read (found in review); both sides refuse each now."""
MEASURED_AT_NO_TIME = MEASURED_AT_REFUSED[-4:]
"""Of those, the ones the operator's read refuses too: no parse reads them as a time. The rest no CRD admitted,
so no stored object carries them."""
MEASURED_AT_STORED_BEFORE = ["2026-11-27t00:00:00z", "2026-11-27T00:00:00.1234567891Z"]
"""measuredAt values the previous CRD (format date-time only) admitted and the previous operator read."""
MEASURED_AT_ADMITTED = [
    "2026-11-27T00:00:00Z",
    "2026-11-27T01:30:00.123456789+01:30",
    "2026-11-27T00:00:00-23:59",
    "0001-01-01T00:00:00Z",
]


def _profile(measured_at: str) -> dict[str, Any]:
    profile = next(p for p in EXAMPLES if any(d["kind"] == "GPUProfile" for d in gridshift_documents(p)))
    doc = next(d for d in gridshift_documents(profile) if d["kind"] == "GPUProfile")
    doc["spec"]["source"]["measuredAt"] = measured_at
    return doc


@pytest.mark.parametrize("measured_at", MEASURED_AT_REFUSED)
def test_measured_at_is_refused_unless_rfc3339_with_a_zone(measured_at: str) -> None:
    from gridshift.api.gpu_profile import GPUProfile
    from gridshift.service.inputs import parse_bodies

    doc = _profile(measured_at)
    with pytest.raises(InvalidResource) as caught:
        validate_object(doc)
    assert [path for path, _ in caught.value.problems] == ["spec.source.measuredAt"]
    assert "RFC 3339" in str(caught.value)
    (parsed,) = parse_bodies([doc], GPUProfile)
    if measured_at in MEASURED_AT_NO_TIME:
        assert parsed.error is not None and "measuredAt" in parsed.error


@pytest.mark.parametrize("measured_at", MEASURED_AT_STORED_BEFORE)
def test_measured_at_stored_before_the_pattern_is_read_by_the_operator(measured_at: str) -> None:
    """Found in review: the pattern applied on the operator's read too, so a profile stored under the previous
    CRD was refused after an upgrade and the planner used the default profile. Admission refuses it; the
    operator reads it, as the previous release did."""
    from gridshift.api.gpu_profile import GPUProfile
    from gridshift.service.inputs import parse_bodies

    doc = _profile(measured_at)
    with pytest.raises(InvalidResource) as caught:
        validate_object(doc)
    assert [path for path, _ in caught.value.problems] == ["spec.source.measuredAt"]
    (parsed,) = parse_bodies([doc], GPUProfile)
    assert parsed.error is None, parsed.error
    assert parsed.resource is not None
    measured = parsed.resource.spec.source.measured_at
    assert measured is not None and measured.replace(microsecond=0) == datetime(2026, 11, 27, tzinfo=UTC)


@pytest.mark.parametrize("measured_at", MEASURED_AT_ADMITTED)
def test_measured_at_in_rfc3339_with_a_zone_is_read(measured_at: str) -> None:
    from gridshift.api.gpu_profile import GPUProfile
    from gridshift.service.inputs import parse_bodies

    doc = _profile(measured_at)
    validate_object(doc)
    (parsed,) = parse_bodies([doc], GPUProfile)
    assert parsed.error is None, parsed.error


QWEN = "inferencedeployment-qwen-advisory.yaml"
PROFILE = "gpuprofile-llama3-8b-h100.yaml"
YAML_AS_KUBECTL_READS = [
    # (id, example, text replaced, replacement, the field the apiserver refuses or None where it admits it)
    ("sexagesimal-number", QWEN, "mode: Advisory", "mode: Advisory\n    paybackHorizonHours: 1:30",
     "spec.migration.paybackHorizonHours"),
    ("sexagesimal-integer", QWEN, "ttftP95Ms: 2000", "ttftP95Ms: 1:30", "spec.slo.ttftP95Ms"),
    ("exponent-without-dot", QWEN, "ttftP95Ms: 2000", "ttftP95Ms: 1e3", None),
    ("exponent-without-sign", QWEN, "ttftP95Ms: 2000", "ttftP95Ms: 1.5e3", None),
    ("negative-exponent", QWEN, "requestsPerSecond: 2.6", "requestsPerSecond: 26e-1", None),
    ("signed-leading-dot", QWEN, "requestsPerSecond: 2.6", "requestsPerSecond: +.5", None),
    ("exponent-for-a-string", QWEN, "source: Qwen/Qwen2.5-Coder-32B-Instruct",
     "source: Qwen/Qwen2.5-Coder-32B-Instruct\n    revision: 1234e56", "spec.model.revision"),
    ("0o-octal-for-a-string", QWEN, "source: Qwen/Qwen2.5-Coder-32B-Instruct",
     "source: Qwen/Qwen2.5-Coder-32B-Instruct\n    revision: 0o17", "spec.model.revision"),
    ("0o-octal", QWEN, "maxReplicas: 8", "maxReplicas: 0o17", None),
    ("upper-case-hex", QWEN, "maxReplicas: 8", "maxReplicas: 0X10", None),
    ("not-octal-is-a-float", QWEN, "maxReplicas: 8", "maxReplicas: 09", None),
    ("time-with-a-space", PROFILE, 'measuredAt: "2026-11-27T00:00:00Z"', "measuredAt: 2026-11-27 00:00:00Z",
     "spec.source.measuredAt"),
    ("time-with-an-hour-offset", PROFILE, 'measuredAt: "2026-11-27T00:00:00Z"',
     "measuredAt: 2026-11-27T00:00:00+1", "spec.source.measuredAt"),
    ("time-with-lower-case-t", PROFILE, 'measuredAt: "2026-11-27T00:00:00Z"', "measuredAt: 2026-11-27t00:00:00Z",
     "spec.source.measuredAt"),
    ("time-unquoted", PROFILE, 'measuredAt: "2026-11-27T00:00:00Z"', "measuredAt: 2026-11-27T00:00:00Z", None),
]  # fmt: skip
"""Plain scalars PyYAML and kubectl (go-yaml) read differently (found in review); each case is applied to a real
apiserver too (tests/cluster/test_crds_apiserver.py)."""


def yaml_as_kubectl_reads(example: str, old: str, new: str) -> str:
    text = (REPO_ROOT / "examples" / example).read_text()
    assert old in text, f"{example} no longer has {old!r}"
    return text.replace(old, new)


@pytest.mark.parametrize(
    ("example", "old", "new", "refused"), [pytest.param(*case[1:], id=case[0]) for case in YAML_AS_KUBECTL_READS]
)
def test_validate_reads_plain_scalars_as_kubectl_does(
    example: str, old: str, new: str, refused: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(yaml_as_kubectl_reads(example, old, new))
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    if refused is None:
        assert code == 0, err
    else:
        assert code == 1 and refused in err, err


def test_plain_scalars_are_go_yaml_values() -> None:
    # go-yaml v2's resolve (sigs.k8s.io/yaml, which kubectl's YAML-to-JSON uses), value by value.
    from gridshift.api.validation import kubectl_scalar

    expected = {
        "1:30": "1:30", "190:20:30.15": "190:20:30.15", "1e3": 1000.0, "12e-1": 1.2, "1.5e3": 1500.0, "-.5": -0.5,
        ".5": 0.5, "1.": 1.0, "1.e5": 1e5, "0o17": 15, "0O17": 15, "017": 15, "08": 8.0, "0x1F": 31, "0X1F": 31,
        "0b101": 5, "0B101": 5, "-0b101": -5, "1_000": 1000, "_1": "_1", "0x": "0x", "1e999": "1e999",
        ".5_0": ".5_0", "18446744073709551615": 2**64 - 1, "18446744073709551616": float(2**64),
        "2026-11-27": "2026-11-27", "2026-11-27 00:00:00Z": "2026-11-27 00:00:00Z", "=": "=", "y": True,
        "Off": False, "~": None, "": None, ".Inf": float("inf"), "abc": "abc",
    }  # fmt: skip
    expected["1" * 300] = float("1" * 300)  # past 64 bits: a float, as go-yaml reads it
    expected["1" * 4301] = "1" * 4301  # past Python's int() digit limit (a traceback) and float64: the text
    got = {text: kubectl_scalar(text) for text in expected}
    assert got == expected
    assert {text: type(value) for text, value in got.items()} == {t: type(v) for t, v in expected.items()}


def test_validate_checks_each_item_of_a_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Found in review: a `kind: List` (as `kubectl get idep -o yaml` writes) was skipped, exit 0, its items
    # never checked; kubectl applies each item and the apiserver refused this one.
    path = tmp_path / "list.yaml"
    path.write_text(LIST_OF_A_BAD_DEPLOYMENT)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "spec.replica.gpusPerReplica" in err and "spec.slo.ttftP95Ms" in err
    # Items without kind and apiVersion take the list's, as kubectl's decoder gives them.
    (doc,) = gridshift_documents(REPO_ROOT / "examples" / QWEN)
    del doc["apiVersion"], doc["kind"]
    path.write_text(yaml.safe_dump({"apiVersion": API_VERSION, "kind": "InferenceDeploymentList", "items": [doc]}))
    assert main(["validate", str(path)]) == 0
    assert f"ok  {path}: InferenceDeployment ml-serving/qwen-coder-batch" in capsys.readouterr().out
    # Other kinds' items are skipped, as their documents are; a list with nothing in it is refused.
    path.write_text("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: x}}\n")
    assert main(["validate", str(path)]) == 0
    assert f"skip {path}: ConfigMap is not a {GROUP} resource" in capsys.readouterr().out
    refusals = [
        ("items: []", "has no items"),
        ("items: {a: 1}", "items must be a list"),
        ("items: [1]", "item 1 is not"),
    ]
    for body, words in refusals:
        path.write_text(f"apiVersion: v1\nkind: List\n{body}\n")
        assert main(["validate", str(path)]) == 1
        assert words in capsys.readouterr().err


LIST_OF_A_BAD_DEPLOYMENT = """apiVersion: v1
kind: List
items:
- apiVersion: gridshift.dev/v1alpha1
  kind: InferenceDeployment
  metadata: {name: bad, namespace: ml-serving}
  spec:
    model: {servedName: x, source: org/x}
    replica: {gpuTypes: [H100], gpusPerReplica: 3}
    slo: {ttftP95Ms: -1, tpotP95Ms: 50}
"""
