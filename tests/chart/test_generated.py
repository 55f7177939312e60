"""The chart's generated files are current, and the values schema catches what it should (no helm needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

import gridshift.settings as settings_module
from gridshift.settings import OperatorSettings
from gridshift_dev import chart as chart_cli

from .conftest import CHART_DIR, REPO_ROOT


def _values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    return loaded


def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHART_DIR / "values.schema.json").read_text())
    return loaded


def test_generated_files_are_current() -> None:
    stale = chart_cli.stale_files(CHART_DIR)
    assert not stale, f"run `make chart`: stale {[str(p) for p in stale]}"


def test_check_flag_reports_a_stale_schema(tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "repo" / "charts" / "gridshift"
    shutil.copytree(CHART_DIR, copy)
    shutil.copytree(REPO_ROOT / "crds", tmp_path / "repo" / "crds")
    schema = copy / "values.schema.json"
    schema.write_text(schema.read_text().replace('"additionalProperties": false', '"additionalProperties": true', 1))
    assert chart_cli.stale_files(copy) == [schema]


def test_check_flag_reports_a_lease_margin_the_chart_no_longer_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    # The chart's lease check reads the operator's margin through the generated template, so a change is caught.
    monkeypatch.setattr(settings_module, "LEASE_WRITE_MARGIN_SECONDS", 2.0)
    assert chart_cli.stale_files(CHART_DIR) == [CHART_DIR / chart_cli.OPERATOR_DEFAULTS_TEMPLATE]


def test_chart_crds_are_the_repository_crds() -> None:
    """files/crds holds the spec of each file in crds/ verbatim: same bytes from `spec:` on."""
    sources = sorted((REPO_ROOT / "crds").glob("*.yaml"))
    assert sources, "crds/ is empty"
    copies = {p.name: p.read_text() for p in (CHART_DIR / "files" / "crds").glob("*.yaml")}
    for source in sources:
        text = source.read_text()
        name = yaml.safe_load(text)["metadata"]["name"]
        copy = copies.pop(f"{name}.yaml")
        assert copy.split("\nspec:\n", 1)[1] == text.split("\nspec:\n", 1)[1], source.name
    assert not copies, f"CRD copies without a source in crds/: {sorted(copies)}"


def test_values_yaml_satisfies_the_schema() -> None:
    jsonschema.Draft7Validator.check_schema(_schema())
    jsonschema.Draft7Validator(_schema()).validate(_values())


@pytest.mark.parametrize(
    ("path", "bad_key"),
    [((), "replicas"), (("operator",), "planIntervalSecs"), (("metrics", "serviceMonitor"), "enable")],
)
def test_schema_refuses_typos_naming_the_key(path: tuple[str, ...], bad_key: str) -> None:
    values = _values()
    node = values
    for key in path:
        node = node[key]
    node[bad_key] = 1
    errors = list(jsonschema.Draft7Validator(_schema()).iter_errors(values))
    assert len(errors) == 1
    assert bad_key in errors[0].message and list(errors[0].absolute_path) == list(path)


def test_schema_refuses_out_of_range_settings() -> None:
    values = _values()
    values["operator"]["planIntervalSeconds"] = 0.5  # OperatorSettings: ge=1
    values["operator"]["metricsWindowSeconds"] = 5  # OperatorSettings: ge=10
    failing = {tuple(e.absolute_path) for e in jsonschema.Draft7Validator(_schema()).iter_errors(values)}
    assert failing == {("operator", "planIntervalSeconds"), ("operator", "metricsWindowSeconds")}


@pytest.mark.parametrize(
    ("label", "refused"),
    [
        ("cluster", False),
        ("_k8s_cluster2", False),
        # Found in review: these were taken, went unescaped into every PromQL selector and `by (...)`, and
        # every query failed (demand unknown everywhere) with no error at install.
        ("k8s-cluster", True),
        ("", True),
        ("1cluster", True),
        ("cluster name", True),
        # Prometheus' own (__name__), and labels the selectors already match on: no series has two values.
        ("__name__", True),
        ("namespace", True),
        ("pod", True),
        # Found in review: the histogram bucket label the length-bucket queries group by, with the cluster label.
        ("le", True),
    ],
)
def test_the_metrics_cluster_label_is_a_usable_prometheus_label_name(label: str, refused: bool) -> None:
    values = _values()
    values["operator"]["metricsClusterLabel"] = label
    failing = [list(e.absolute_path) for e in jsonschema.Draft7Validator(_schema()).iter_errors(values)]
    assert failing == ([["operator", "metricsClusterLabel"]] if refused else [])
    if refused:
        with pytest.raises(ValidationError, match="metrics_cluster_label"):
            OperatorSettings(metrics_cluster_label=label)
    else:
        assert OperatorSettings(metrics_cluster_label=label).metrics_cluster_label == label


def test_operator_values_mirror_the_settings_model() -> None:
    """Every setting but the namespace is a value, with the model's default and bounds."""
    operator_values = _values()["operator"]
    operator_schema = _schema()["properties"]["operator"]["properties"]
    fields = OperatorSettings.model_fields
    expected = {chart_cli.camel_case(name) for name in fields} - {"namespace"}
    assert set(operator_values) == expected == set(operator_schema)
    for name, field in fields.items():
        if name == "namespace":
            continue
        key = chart_cli.camel_case(name)
        assert operator_values[key] == field.default, key
        assert f"GRIDSHIFT_{name.upper()}" in operator_schema[key]["description"]
    assert operator_schema["planIntervalSeconds"]["minimum"] == 1


def test_camel_case_round_trips_through_sprig_snakecase_rules() -> None:
    # sprig's snakecase inserts "_" before each upper-case letter and lower-cases; mirror it here
    # (the helm render test checks the real thing).
    for name in OperatorSettings.model_fields:
        camel = chart_cli.camel_case(name)
        assert re.sub(r"([A-Z])", r"_\1", camel).lower() == name


def test_every_value_is_documented() -> None:
    assert chart_cli.undocumented_leaves((CHART_DIR / "values.yaml").read_text()) == []


def test_readme_table_lists_every_documented_value_with_its_default() -> None:
    readme = (CHART_DIR / "README.md").read_text()
    docs = chart_cli.value_docs((CHART_DIR / "values.yaml").read_text(), _schema())
    assert len(docs) > 40
    for doc in docs:
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{doc.path}` |")), None)
        assert row is not None, doc.path
        assert json.dumps(doc.default, separators=(", ", ": ")).replace("|", "\\|") in row


def test_readme_parser_joins_continuations_and_ignores_flag_lines() -> None:
    text = "a:\n  # -- first line\n  # --flag continues it\n  b: 1\n# -- top\nc: [x]\n"
    assert chart_cli.documented_keys(text) == {"a.b": "first line --flag continues it", "c": "top"}


def test_cli_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gridshift_dev.__main__ import main

    assert main(["chart", "--check", "--chart-dir", str(CHART_DIR)]) == 0
    assert main(["chart", "--check", "--chart-dir", str(tmp_path)]) == 2
    assert "no Chart.yaml" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://prometheus.monitoring:9090", False),
        ("https://proxy.example/prom?tenant=fleet", False),  # a proxy's parameter that is no credential
        # Found in review: docs/signals.md advised a proxy's key here, which then sat in clear in the
        # Deployment's env and the release's values (httpJson.url's rule: api.common.CREDENTIAL_QUERY).
        ("https://proxy.example/prom?api_key=s3cr3t-key", True),
        ("https://proxy.example/prom?tenant=fleet&Access_Token=s3cr3t-key", True),
    ],
)
def test_the_default_prometheus_url_carries_no_credential_in_its_query(url: str, refused: bool) -> None:
    values = _values()
    values["operator"]["prometheusUrl"] = url
    failing = [list(e.absolute_path) for e in jsonschema.Draft7Validator(_schema()).iter_errors(values)]
    assert failing == ([["operator", "prometheusUrl"]] if refused else [])
    if refused:
        with pytest.raises(ValidationError, match=r"operator\.prometheusUrl .* must not carry a credential") as caught:
            OperatorSettings(prometheus_url=url)
        assert "proxy" in caught.value.errors()[0]["msg"] and "s3cr3t" not in caught.value.errors()[0]["msg"]
    else:
        assert OperatorSettings(prometheus_url=url).prometheus_url == url
