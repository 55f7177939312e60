"""The chart next to cert-manager's and KEDA's: `global` accepted (gridshift as a subchart, installed
on the real hub inside an umbrella chart), commonLabels/commonAnnotations on every object, extra
volumes, the log level, leader-election timings checked at render time, a PodMonitor with
relabelings, NOTES that hold for the packaged chart, upgrade notes, `helm lint --strict`."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

import gridshift.settings as settings_module
from gridshift.settings import LEASE_WRITE_MARGIN_SECONDS, OperatorSettings, load_operator_settings
from gridshift_dev import chart as chart_cli

from .conftest import CHART_DIR, KUBE_VERSION, REPO_ROOT, Helm, Hub

RBAC_KINDS = {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
"""Their templates belong to the RBAC owners: commonLabels reach them through the shared labels, annotations do not."""


def values_file(tmp_path: Path, values: dict[str, Any], name: str = "values.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(values))
    return str(path)


def only(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = only(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


EVERYTHING = {
    "replicaCount": 2,
    "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
    "networkPolicy": {"enabled": True},
}


def test_lint_strict_with_every_option(helm: Helm, tmp_path: Path) -> None:
    everything = {
        **EVERYTHING,
        "global": {"imageRegistry": "registry.example:5000", "imagePullSecrets": ["pull"], "anything": {"x": 1}},
        "commonLabels": {"team": "ml"},
        "commonAnnotations": {"owner": "platform"},
        "logLevel": "debug",
        "operator": {"logFormat": "json"},
        "dashboards": {"enabled": True, "annotations": {"grafana_folder": "gridshift"}},
        "volumes": [{"name": "ca", "configMap": {"name": "corp-ca"}}],
        "volumeMounts": [{"name": "ca", "mountPath": "/etc/corp-ca", "readOnly": True}],
    }
    helm.run("lint", str(CHART_DIR), "--strict", "--values", values_file(tmp_path, everything))
    pod_monitor = {"metrics": {"podMonitor": {"enabled": True, "relabelings": [{"action": "labeldrop", "regex": "x"}]}}}
    helm.run("lint", str(CHART_DIR), "--strict", "--values", values_file(tmp_path, pod_monitor, "pm.yaml"))


def test_common_labels_and_annotations_reach_every_object(helm: Helm, tmp_path: Path) -> None:
    values = {
        **EVERYTHING,
        "commonLabels": {"team": "ml", "cost-centre": "42"},
        "commonAnnotations": {"owner": "platform", "shared": "common"},
        "deploymentAnnotations": {"shared": "own"},
        "global": {"commonLabels": {"team": "global-loses", "from-global": "yes"}},
    }
    objects = helm.render("--values", values_file(tmp_path, values))
    kinds = {o["kind"] for o in objects}
    assert {
        "Deployment",
        "Service",
        "ServiceMonitor",
        "PrometheusRule",
        "NetworkPolicy",
        "PodDisruptionBudget",
    } <= kinds
    for o in objects:
        labels = o["metadata"]["labels"]
        assert labels["team"] == "ml" and labels["cost-centre"] == "42", o["kind"]
        assert labels["from-global"] == "yes", o["kind"]
        if o["kind"] not in RBAC_KINDS:
            annotations = o["metadata"].get("annotations") or {}
            assert annotations.get("owner") == "platform", o["kind"]
    deployment = only(objects, "Deployment")
    assert deployment["metadata"]["annotations"]["shared"] == "own", "an object's own annotation wins"
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["team"] == "ml" and pod_labels["from-global"] == "yes"
    # The selector stays the stable pair, so adding labels never orphans pods on upgrade.
    assert set(deployment["spec"]["selector"]["matchLabels"]) == {
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
    }


def test_global_is_accepted_and_its_image_registry_and_pull_secrets_are_used(helm: Helm, tmp_path: Path) -> None:
    values = {
        "imagePullSecrets": [{"name": "own"}],
        "global": {
            "imageRegistry": "mirror.internal:5000",
            "imagePullSecrets": ["shared", {"name": "own"}],
            "storageClass": "fast",  # another chart's global: accepted, ignored
        },
    }
    spec = pod_spec(helm.render("--values", values_file(tmp_path, values)))
    assert spec["containers"][0]["image"] == "mirror.internal:5000/gridshift/gridshift:0.1.0"
    assert spec["imagePullSecrets"] == [{"name": "own"}, {"name": "shared"}]
    no_registry = pod_spec(
        helm.render("--set", "image.repository=gridshift/gridshift", "--set", "global.imageRegistry=r.io")
    )
    assert no_registry["containers"][0]["image"] == "r.io/gridshift/gridshift:0.1.0"


def test_extra_volumes_are_mounted_beside_tmp(helm: Helm, tmp_path: Path) -> None:
    values = {
        "volumes": [{"name": "corp-ca", "configMap": {"name": "corp-ca-bundle"}}],
        "volumeMounts": [{"name": "corp-ca", "mountPath": "/etc/ssl/corp", "readOnly": True}],
        "extraEnv": [{"name": "SSL_CERT_FILE", "value": "/etc/ssl/corp/ca.crt"}],
    }
    spec = pod_spec(helm.render("--values", values_file(tmp_path, values)))
    assert [v["name"] for v in spec["volumes"]] == ["tmp", "corp-ca"]
    mounts = spec["containers"][0]["volumeMounts"]
    assert {"name": "tmp", "mountPath": "/tmp"} in mounts
    assert {"name": "corp-ca", "mountPath": "/etc/ssl/corp", "readOnly": True} in mounts


@pytest.mark.parametrize(("level", "flags"), [("debug", ["--verbose"]), ("info", []), ("warning", ["--quiet"])])
def test_log_level_becomes_kopfs_flag(helm: Helm, level: str, flags: list[str]) -> None:
    args = pod_spec(helm.render("--set", f"logLevel={level}"))["containers"][0]["args"]
    assert [a for a in args if a in ("--verbose", "--quiet", "--debug")] == flags


def test_log_level_flags_exist_in_kopf_and_bad_levels_are_refused(helm: Helm) -> None:
    import kopf.cli

    options = {opt for param in kopf.cli.run.params for opt in param.opts}
    assert {"--verbose", "--quiet"} <= options
    proc = helm.template("--set", "logLevel=trace", check=False)
    assert proc.returncode != 0 and "logLevel" in proc.stderr


def test_a_planner_budget_not_below_the_plan_interval_is_refused_at_install(helm: Helm) -> None:
    """OperatorSettings refuses it at start: an install would crash-loop instead of failing here."""
    proc = helm.template("--set", "operator.planIntervalSeconds=2", check=False)
    assert proc.returncode != 0
    assert "plannerTimeBudgetSeconds (10) must be below planIntervalSeconds (2)" in proc.stderr
    # A null budget is the operator's default (10 s), which it refuses over a 2 s interval.
    proc = helm.template(
        "--set", "operator.planIntervalSeconds=2", "--set", "operator.plannerTimeBudgetSeconds=null", check=False
    )  # fmt: skip
    assert proc.returncode != 0
    assert "plannerTimeBudgetSeconds (10) must be below planIntervalSeconds (2)" in proc.stderr
    assert helm.template("--set", "operator.planIntervalSeconds=2", "--set", "operator.plannerTimeBudgetSeconds=1")


def _operator_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    env = pod_spec(objects)["containers"][0]["env"]
    return {e["name"]: e["value"] for e in env if e["name"].startswith("GRIDSHIFT_") and "value" in e}


@pytest.mark.parametrize(
    ("interval", "budget"),
    [("2", "null"), ("null", "100"), ("11", "null"), ("null", "59"), ("null", "null"), ("2", "1.5")],
)
def test_a_null_setting_is_checked_as_the_operators_default(
    helm: Helm, monkeypatch: pytest.MonkeyPatch, interval: str, budget: str
) -> None:
    """A null operator.* sets no env var, so the operator takes its default: the chart checks that, and
    renders exactly what the operator then accepts. Found in review: a null budget (the operator's is 10 s)
    with a 2 s interval rendered, and the operator refused to start (crash loop)."""
    proc = helm.template(
        "--set-json", f"operator.planIntervalSeconds={interval}",
        "--set-json", f"operator.plannerTimeBudgetSeconds={budget}",
        check=False,
    )  # fmt: skip
    given = {"plan_interval_seconds": interval, "planner_time_budget_seconds": budget}
    effective = {
        key: float(value) if value != "null" else OperatorSettings.model_fields[key].default
        for key, value in given.items()
    }
    operator_refuses = effective["planner_time_budget_seconds"] >= effective["plan_interval_seconds"]
    if operator_refuses:
        assert proc.returncode != 0
        expected = (
            f"plannerTimeBudgetSeconds ({effective['planner_time_budget_seconds']:g}) must be below "
            f"planIntervalSeconds ({effective['plan_interval_seconds']:g})"
        )
        assert expected in proc.stderr, proc.stderr
        return
    _the_operator_starts_with(proc, monkeypatch)


def _the_operator_starts_with(proc: subprocess.CompletedProcess[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The render succeeded, and its operator env is one the operator accepts at start (load_operator_settings)."""
    assert proc.returncode == 0, proc.stderr
    objects = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
    for name, value in _operator_env(objects).items():
        monkeypatch.setenv(name, value)
    load_operator_settings()


BUDGET_ENV = "GRIDSHIFT_PLANNER_TIME_BUDGET_SECONDS"
BUDGET_OVER = "plannerTimeBudgetSeconds ({}) must be below planIntervalSeconds (5)"


@pytest.mark.parametrize(
    ("operator", "extra_env", "refusal"),
    [
        # Found in review: extraEnv's budget is what the operator reads, and it was checked as the default 10 s.
        ({"planIntervalSeconds": 5, "plannerTimeBudgetSeconds": None}, [(BUDGET_ENV, "2")], None),
        ({"planIntervalSeconds": 5, "plannerTimeBudgetSeconds": 1}, [(BUDGET_ENV, "6")], BUDGET_OVER.format(6)),
        ({"planIntervalSeconds": 2}, [("GRIDSHIFT_PLAN_INTERVAL_SECONDS", "30")], None),
        ({"planIntervalSeconds": None}, [("GRIDSHIFT_PLAN_INTERVAL_SECONDS", "5")], BUDGET_OVER.format(10)),
        # The same name twice: Kubernetes gives the container the last.
        ({"planIntervalSeconds": 5}, [(BUDGET_ENV, "20"), (BUDGET_ENV, " 2 ")], None),
        ({"planIntervalSeconds": 5}, [(BUDGET_ENV, "2"), (BUDGET_ENV, "20")], BUDGET_OVER.format(20)),
        # The operator reads names in any case: one the chart does not write itself is read as it is...
        (
            {"planIntervalSeconds": 5, "plannerTimeBudgetSeconds": None},
            [("gridshift_planner_time_budget_seconds", "6")],
            BUDGET_OVER.format(6),
        ),
        # ...but beside the chart's own entry in another case, which the operator gets is not defined (found in
        # review: the container's environment order decides), so it is refused.
        (
            {"planIntervalSeconds": 5, "plannerTimeBudgetSeconds": 6},
            [("gridshift_planner_time_budget_seconds", "2")],
            "extraEnv: gridshift_planner_time_budget_seconds differs from the chart's own "
            "GRIDSHIFT_PLANNER_TIME_BUDGET_SECONDS (operator.plannerTimeBudgetSeconds) in case alone",
        ),
        ({}, [("GRIDSHIFT_PROBE_PORT", "9090")], "probePort and metricsPort are both 9090"),
        ({}, [("GRIDSHIFT_LEASE_DURATION_SECONDS", "11")], "leaseDurationSeconds (11) must exceed"),
        ({}, [("GRIDSHIFT_LEASE_RETRY_PERIOD_SECONDS", "12")], "leaseRetryPeriodSeconds (12) < leaseRenewDeadline"),
    ],
)
def test_extra_env_settings_are_checked_as_the_operator_reads_them(
    helm: Helm,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    operator: dict[str, Any],
    extra_env: list[tuple[str, str]],
    refusal: str | None,
) -> None:
    """extraEnv follows the chart's env in the container, so its GRIDSHIFT_* entry is what the operator reads:
    the chart's cross-field checks read that, and what renders is what the operator accepts."""
    values = {"operator": operator, "extraEnv": [{"name": name, "value": value} for name, value in extra_env]}
    proc = helm.template("--values", values_file(tmp_path, values), check=False)
    if refusal is not None:
        assert proc.returncode != 0 and refusal in proc.stderr, proc.stderr
        return
    _the_operator_starts_with(proc, monkeypatch)


def test_every_operator_env_entry_of_the_chart_is_refused_in_another_case_in_extra_env(helm: Helm) -> None:
    """The operator reads GRIDSHIFT_* names in any case, so beside each entry the chart writes, one differing in case
    alone leaves which it reads undefined. Found in review: gridshift_namespace was taken, the chart's own
    GRIDSHIFT_NAMESPACE (the downward API's) being no operator.* value the check walked."""
    env = pod_spec(helm.render())["containers"][0]["env"]
    names = [e["name"] for e in env if e["name"].startswith("GRIDSHIFT_")]
    assert "GRIDSHIFT_NAMESPACE" in names
    for name in names:
        entry = json.dumps([{"name": name.lower(), "value": "1"}])
        proc = helm.template("--set-json", f"extraEnv={entry}", check=False)
        refusal = f"extraEnv: {name.lower()} differs from the chart's own {name} "
        assert proc.returncode != 0 and refusal in proc.stderr, (name, proc.stderr)
    # POD_NAME the operator does not read: Kubernetes keeps pod_name apart, and so does the chart.
    assert helm.template("--set-json", 'extraEnv=[{"name": "pod_name", "value": "x"}]')


@pytest.mark.parametrize(
    "value", [{"valueFrom": {"configMapKeyRef": {"name": "gs", "key": "budget"}}}, {"value": "1_0"}]
)
def test_an_extra_env_setting_the_chart_cannot_read_is_left_to_the_operator(helm: Helm, value: dict[str, Any]) -> None:
    # The operator parses forms the chart does not ("1_0" is 10 to it) and refuses the rest at start, naming them.
    entry = json.dumps([{"name": BUDGET_ENV, **value}])
    assert helm.template("--set", "operator.planIntervalSeconds=5", "--set-json", f"extraEnv={entry}")


def test_an_extra_env_value_beside_a_null_value_from_is_checked(helm: Helm) -> None:
    # Found in review: valueFrom: null (which the apiserver drops) made the chart skip its check of the value the
    # operator reads, and the operator refused to start.
    entry = json.dumps([{"name": BUDGET_ENV, "value": "6", "valueFrom": None}])
    proc = helm.template("--set", "operator.planIntervalSeconds=5", "--set-json", f"extraEnv={entry}", check=False)
    assert proc.returncode != 0 and BUDGET_OVER.format(6) in proc.stderr, proc.stderr


def test_ports_set_in_extra_env_are_the_ports_the_probes_and_scrapes_use(helm: Helm) -> None:
    # Found in review: the container's ports (and so the named probe and scrape ports) stayed operator.probePort and
    # operator.metricsPort while the operator listened on extraEnv's.
    entries = json.dumps(
        [{"name": "GRIDSHIFT_PROBE_PORT", "value": "8081"}, {"name": "GRIDSHIFT_METRICS_PORT", "value": "9091"}]
    )
    ports = {
        p["name"]: p["containerPort"]
        for p in pod_spec(helm.render("--set-json", f"extraEnv={entries}"))["containers"][0]["ports"]
    }
    assert ports == {"probes": 8081, "metrics": 9091}
    ports = {p["name"]: p["containerPort"] for p in pod_spec(helm.render())["containers"][0]["ports"]}
    assert ports == {"probes": 8080, "metrics": 9090}


def test_inconsistent_lease_timings_are_refused_naming_them(helm: Helm) -> None:
    proc = helm.template("--set", "operator.leaseRenewDeadlineSeconds=20", check=False)
    assert proc.returncode != 0
    assert "leaseRetryPeriodSeconds (2) < leaseRenewDeadlineSeconds (20) < leaseDurationSeconds (15)" in proc.stderr
    # A member write started just inside the renew deadline must land before a standby may act
    # (settings.LEASE_WRITE_MARGIN_SECONDS): the operator refuses 11/10, and so does the chart.
    proc = helm.template(
        "--set", "operator.leaseDurationSeconds=11", "--set", "operator.leaseRenewDeadlineSeconds=10", check=False
    )  # fmt: skip
    assert proc.returncode != 0
    margin = f"by at least {LEASE_WRITE_MARGIN_SECONDS:g} s"  # generated from the operator's constant
    assert f"leaseDurationSeconds (11) must exceed leaseRenewDeadlineSeconds (10) {margin}" in proc.stderr
    env = {
        e["name"]: e.get("value")
        for e in pod_spec(
            helm.render(
                "--set", "operator.leaseDurationSeconds=30",
                "--set", "operator.leaseRenewDeadlineSeconds=20",
                "--set", "operator.leaseRetryPeriodSeconds=4",
            )
        )["containers"][0]["env"]
    }  # fmt: skip
    assert (env["GRIDSHIFT_LEASE_DURATION_SECONDS"], env["GRIDSHIFT_LEASE_RENEW_DEADLINE_SECONDS"]) == ("30", "20")
    assert env["GRIDSHIFT_LEASE_RETRY_PERIOD_SECONDS"] == "4"


def test_the_lease_margin_the_chart_checks_is_generated_from_the_operators(
    helm: Helm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: the template held its own 1.5 literal, which a change of settings.LEASE_WRITE_MARGIN_SECONDS
    left behind unnoticed by `chart --check`. A chart generated under another margin checks that one."""
    monkeypatch.setattr(settings_module, "LEASE_WRITE_MARGIN_SECONDS", 3.0)
    copy = tmp_path / "gridshift"
    shutil.copytree(CHART_DIR, copy)
    (copy / chart_cli.OPERATOR_DEFAULTS_TEMPLATE).write_text(chart_cli.operator_defaults_template())
    args = ("template", "gridshift", str(copy), "--namespace", "gridshift-system", "--kube-version", KUBE_VERSION)
    renew = ("--set", "operator.leaseRenewDeadlineSeconds=10")
    proc = helm.run(*args, *renew, "--set", "operator.leaseDurationSeconds=12", check=False)
    assert proc.returncode != 0
    assert "leaseDurationSeconds (12) must exceed leaseRenewDeadlineSeconds (10) by at least 3 s" in proc.stderr
    assert helm.run(*args, *renew, "--set", "operator.leaseDurationSeconds=13").returncode == 0


def test_pod_monitor_scrapes_the_metrics_port_with_relabelings(helm: Helm, tmp_path: Path) -> None:
    relabelings = [{"targetLabel": "cluster", "replacement": "hub-eu"}]
    metric_relabelings = [{"sourceLabels": ["__name__"], "regex": "go_.*", "action": "drop"}]
    values = {
        "metrics": {
            "podMonitor": {
                "enabled": True,
                "labels": {"release": "kube-prometheus"},
                "annotations": {"a": "b"},
                "relabelings": relabelings,
                "metricRelabelings": metric_relabelings,
            }
        }
    }
    objects = helm.render("--values", values_file(tmp_path, values))
    monitor = only(objects, "PodMonitor")
    assert "ServiceMonitor" not in {o["kind"] for o in objects}
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    container = pod_spec(objects)["containers"][0]
    assert endpoint["port"] in {p["name"] for p in container["ports"]}
    assert endpoint["relabelings"] == relabelings and endpoint["metricRelabelings"] == metric_relabelings
    pod_labels = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    service_monitor = {"metrics": {"serviceMonitor": {"enabled": True, "relabelings": relabelings}}}
    endpoint = only(helm.render("--values", values_file(tmp_path, service_monitor, "sm.yaml")), "ServiceMonitor")
    assert endpoint["spec"]["endpoints"][0]["relabelings"] == relabelings


def test_monitor_misconfigurations_are_refused(helm: Helm, tmp_path: Path) -> None:
    both = {"metrics": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}}}
    proc = helm.template("--values", values_file(tmp_path, both), check=False)
    assert proc.returncode != 0 and "choose one" in proc.stderr
    bad = {"metrics": {"podMonitor": {"enabled": True, "relabelings": [{"action": "rename"}]}}}
    proc = helm.template("--values", values_file(tmp_path, bad, "bad.yaml"), check=False)
    assert proc.returncode != 0 and "action" in proc.stderr


BESIDE_INSTALLED_CHART = ("--set", "singleOperatorCheck=false")
"""For an install on the chart tests' hub, where `installed_chart` may run a gridshift operator already, which the
chart refuses a second of (tests/chart/test_chart_cluster.py); these tests are about something else."""


def package(helm: Helm, tmp_path: Path) -> Path:
    out = helm.run("package", str(CHART_DIR), "--destination", str(tmp_path)).stdout
    return Path(re.search(r"saved it to: (\S+)", out)[1])  # type: ignore[index]


@pytest.mark.cluster
def test_notes_hold_for_the_packaged_chart(helm: Helm, hub: Hub, tmp_path: Path) -> None:
    tgz = package(helm, tmp_path)
    with tarfile.open(tgz) as archive:
        packaged = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert "README.tmpl.md" not in packaged
    proc = helm.run(
        "install", "notes", str(tgz), "--dry-run=server", "--namespace", "gs-notes",
        "--set", "image.digest=sha256:" + "0" * 64, "--set", "crds.install=false", *BESIDE_INSTALLED_CHART,
        kubeconfig=hub.kubeconfig,
    )  # fmt: skip
    notes = proc.stdout.split("NOTES:", 1)[1]
    # Every path the notes name is in the package, and nothing of the repository is assumed.
    for path in re.findall(r"\b[\w./-]+/[\w.-]+\.(?:yaml|md|json|txt)\b", notes):
        assert path in packaged or path.startswith("docs/"), f"NOTES name {path}, which the package lacks"
    # Paths of the repository (a relative `charts/...`, `examples/`) and make targets are not there for a chart user.
    for repository_only in (r"examples/", r"member-rbac", r"(?<![/\w])charts/gridshift", r"\bmake "):
        assert not re.search(repository_only, notes), repository_only
    assert "kubectl get idep -A" in notes and "gridshift.dev/secret-purpose=member-kubeconfig" in notes
    assert "oci://<registry>/charts/gridshift-member --version 0.1.0" in notes
    assert "not pinned by digest" not in notes
    unpinned = helm.run(
        "install",
        "notes-unpinned",
        str(tgz),
        "--dry-run=server",
        "--set",
        "crds.install=false",
        *BESIDE_INSTALLED_CHART,
        kubeconfig=hub.kubeconfig,
    ).stdout
    assert "not pinned by digest" in unpinned


def test_readme_has_upgrade_notes_and_never_advises_reuse_values() -> None:
    readme = (CHART_DIR / "README.md").read_text()
    assert "## Upgrading" in readme and "### Version notes" in readme
    commands = [line for line in readme.splitlines() if line.startswith(("helm ", "  helm "))]
    assert commands and not [line for line in commands if "--reuse-values" in line]
    chart_version = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["version"]
    assert f"| {chart_version} |" in readme, "a version note for the chart's version"


def umbrella_chart(helm: Helm, tmp_path: Path) -> Path:
    """A platform chart with gridshift as a dependency, setting globals and gridshift's values."""
    umbrella = tmp_path / "platform"
    (umbrella / "templates").mkdir(parents=True)
    (umbrella / "Chart.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v2",
                "name": "platform",
                "version": "1.0.0",
                "dependencies": [{"name": "gridshift", "version": "0.1.0", "repository": f"file://{CHART_DIR}"}],
            }
        )
    )
    (umbrella / "values.yaml").write_text(
        yaml.safe_dump(
            {
                "global": {"commonLabels": {"platform": "gpu"}, "imagePullSecrets": ["platform-pull"], "env": "prod"},
                "gridshift": {"replicaCount": 1, "crds": {"install": False}, "logLevel": "warning"},
            }
        )
    )
    (umbrella / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: platform\ndata:\n  env: {{ .Values.global.env }}\n"
    )
    helm.run("dependency", "build", str(umbrella))
    return umbrella


def test_gridshift_as_a_dependency_of_an_umbrella_chart(helm: Helm, tmp_path: Path) -> None:
    umbrella = umbrella_chart(helm, tmp_path)
    helm.run("lint", str(umbrella), "--strict")
    objects = [
        o
        for o in yaml.safe_load_all(
            helm.run("template", "platform", str(umbrella), "--namespace", "gpu", "--kube-version", KUBE_VERSION).stdout
        )
        if o
    ]
    deployment = only(objects, "Deployment")
    assert deployment["metadata"]["labels"]["platform"] == "gpu"
    spec = deployment["spec"]["template"]["spec"]
    assert spec["imagePullSecrets"] == [{"name": "platform-pull"}]
    assert "--quiet" in spec["containers"][0]["args"] and deployment["spec"]["replicas"] == 1
    assert "CustomResourceDefinition" not in {o["kind"] for o in objects}


@pytest.mark.cluster
def test_the_umbrella_chart_installs_on_the_real_hub(helm: Helm, hub: Hub, tmp_path: Path) -> None:
    umbrella = umbrella_chart(helm, tmp_path)
    namespace = "gs-umbrella"
    try:
        helm.run(
            "install", "platform", str(umbrella), "--namespace", namespace, "--create-namespace",
            "--set", "gridshift.singleOperatorCheck=false", kubeconfig=hub.kubeconfig,
        )  # fmt: skip
        status = yaml.safe_load(
            helm.run("status", "platform", "-n", namespace, "-o", "yaml", kubeconfig=hub.kubeconfig).stdout
        )
        assert status["info"]["status"] == "deployed"
        labels = hub.kubectl("get", "deployment", "-n", namespace, "-l", "platform=gpu", "-o", "name").stdout
        assert labels.strip() == "deployment.apps/platform-gridshift"
    finally:
        helm.run("uninstall", "platform", "-n", namespace, kubeconfig=hub.kubeconfig, check=False)
        hub.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.mark.parametrize(
    ("flag", "field"),
    [
        ("image.repository=ghcr.io/x/y:1.2", "repository"),  # would render y:1.2:<tag>
        ("image.repository= ", "repository"),
        ("image.tag=bad tag", "tag"),
        ("podDisruptionBudget.maxUnavailable=0", "maxUnavailable"),  # no node with an operator pod drains
        ("operator.prometheusUrl=https://admin:s3cr3t@prom.example:9090", "prometheusUrl"),  # into env in clear
        ("podLabels.app\\.kubernetes\\.io/name=other", "podLabels"),  # the selector would not match the pods
        ("commonLabels.app\\.kubernetes\\.io/instance=x", "commonLabels"),
        ("global.commonLabels.app\\.kubernetes\\.io/instance=x", "global.commonLabels"),
        ("commonLabels.team=a b", "commonLabels"),  # refused object by object by the API server otherwise
        ("fullnameOverride=-", "fullnameOverride"),  # rendered empty names
        ("nameOverride=GridShift", "nameOverride"),  # upper case in every name
    ],
)
def test_values_that_render_a_broken_or_leaky_install_are_refused_naming_them(
    helm: Helm, flag: str, field: str
) -> None:
    proc = helm.template("--set", flag, check=False)
    assert proc.returncode != 0 and field in proc.stderr, proc.stderr
    assert "s3cr3t" not in proc.stdout


def test_labels_in_kubernetes_syntax_are_accepted(helm: Helm) -> None:
    rendered = helm.render("--set", "podLabels.example\\.com/team=ml-platform", "--set", "commonLabels.tier=")
    assert pod_spec(rendered) is not None


def test_a_registry_with_a_port_is_a_valid_repository(helm: Helm) -> None:
    image = pod_spec(helm.render("--set", "image.repository=127.0.0.1:5000/gridshift/gridshift"))["containers"][0]
    assert image["image"].startswith("127.0.0.1:5000/gridshift/gridshift:")


def pasted_commands(notes: str) -> list[str]:
    """The commands the notes give to paste: the lines that start with helm or kubectl, each with the
    lines its trailing backslashes continue it onto."""
    commands: list[str] = []
    continued = False
    for line in notes.splitlines():
        if continued:
            commands[-1] += "\n" + line
        elif re.match(r"\s+(helm|kubectl) ", line):
            commands.append(line.strip())
        else:
            continue
        continued = line.endswith("\\")
    return commands


@pytest.mark.parametrize("flags", [(), ("--set", "crds.install=false")])
def test_notes_commands_paste_into_bash(helm: Helm, flags: tuple[str, ...]) -> None:
    # Found in review: the member chart's install command ended in "(no --create-namespace: ...)" after its
    # continuation line, a bash syntax error when pasted.
    commands = pasted_commands(helm.notes(*flags))
    assert any(c.startswith("helm install gridshift-member") for c in commands), commands
    assert any(c.startswith("kubectl get idep -A") for c in commands), commands
    for command in commands:
        # <registry> is the user's to fill in; as it stands bash would read it as a redirection.
        filled = command.replace("<registry>", "registry.example")
        proc = subprocess.run(["bash", "-n"], input=filled, capture_output=True, text=True, timeout=30, check=False)
        assert proc.returncode == 0, f"{command!r}: {proc.stderr}"


def test_notes_without_crds_give_a_command_that_renders_them_whole(helm: Helm) -> None:
    # Found in review: with crds.install=false the notes pointed at files/crds/, which hold only each CRD's
    # spec (the chart wraps them when it renders); nothing there could be applied.
    notes = helm.notes("--set", "crds.install=false")
    (command,) = [c for c in pasted_commands(notes) if c.startswith("helm template")]
    rendering, applying = command.replace("\\\n", " ").split(" | ")
    # --force-conflicts: CRDs an earlier release installed (crds.install=true) have fields Helm owns; without it
    # the apply is refused with a conflict with "helm" (found in review).
    assert applying.split() == ["kubectl", "apply", "--server-side", "--force-conflicts", "-f", "-"]
    args = shlex.split(rendering)
    assert args[:3] == ["helm", "template", "gridshift"] and args[3] == "oci://<registry>/charts/gridshift"
    assert args[4:6] == ["--version", "0.1.0"]
    crds = [
        doc for doc in yaml.safe_load_all(helm.run("template", "gridshift", str(CHART_DIR), *args[6:]).stdout) if doc
    ]
    expected = {
        crd["metadata"]["name"]: crd
        for crd in (yaml.safe_load(p.read_text()) for p in (REPO_ROOT / "crds").glob("*.yaml"))
    }
    assert {crd["metadata"]["name"] for crd in crds} == set(expected)
    for crd in crds:
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1" and crd["kind"] == "CustomResourceDefinition"
        assert crd["spec"] == expected[crd["metadata"]["name"]]["spec"]


HUB_INSTALL_DOCS = ("README.md", "docs/install.md", "charts/gridshift/README.tmpl.md")


def hub_install_commands(text: str) -> list[list[str]]:
    """`helm install gridshift ...` commands of a document's code blocks, continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [shlex.split(line.split(" #", 1)[0]) for line in re.findall(r"^helm install gridshift .*$", joined, re.M)]


@pytest.mark.parametrize("document", HUB_INSTALL_DOCS)
def test_documented_hub_installs_name_the_namespace_and_a_published_image(document: str) -> None:
    # Found in review: README's `helm install gridshift charts/gridshift` had no namespace (the operator
    # went to `default`, while the member kubeconfig Secrets go to gridshift-system) and ran
    # ghcr.io/gridshift/gridshift:0.1.0, which nothing in the repository publishes.
    commands = hub_install_commands((REPO_ROOT / document).read_text())
    assert commands, document
    for command in commands:
        namespace = next(command[i + 1] for i, arg in enumerate(command) if arg in ("-n", "--namespace"))
        assert namespace == "gridshift-system" and "--create-namespace" in command, command
        if command[3] == "charts/gridshift":  # from a checkout: no published chart pins the image
            sets = [command[i + 1] for i, arg in enumerate(command) if arg == "--set"]
            assert any(s.startswith("image.repository=") for s in sets), command
            assert any(s.startswith("image.digest=") for s in sets), command


def _ip_block_beside(selector: str) -> str:
    """metricsFrom holding one peer with an ipBlock and a selector."""
    return json.dumps([{"ipBlock": {"cidr": "10.0.0.0/8"}, selector: {"matchLabels": {"a": "b"}}}])


@pytest.mark.parametrize(
    ("args", "path"),
    [
        # Found in review: each passed the schema, and the API server refused the object mid-install.
        (("--set", "serviceAccount.name=Foo_Bar"), "/serviceAccount/name"),  # a DNS subdomain
        (("--set", "priorityClassName=x_y"), "/priorityClassName"),
        (("--set-json", "networkPolicy.metricsFrom=[{}]"), "/networkPolicy/metricsFrom/0"),  # "must specify a peer"
        (("--set-json", 'networkPolicy.metricsFrom=[{"podselector": {}}]'), "/networkPolicy/metricsFrom/0"),
        # A real kube-apiserver: "may not specify both ipBlock and another peer". The selector is named.
        (
            ("--set-json", f"networkPolicy.metricsFrom={_ip_block_beside('podSelector')}"),
            "/networkPolicy/metricsFrom/0/podSelector",
        ),
        (
            ("--set-json", f"networkPolicy.metricsFrom={_ip_block_beside('namespaceSelector')}"),
            "/networkPolicy/metricsFrom/0/namespaceSelector",
        ),
    ],
)
def test_names_and_peers_the_api_server_refuses_are_refused_naming_them(
    helm: Helm, args: tuple[str, ...], path: str
) -> None:
    proc = helm.template("--set", "networkPolicy.enabled=true", *args, check=False)
    assert proc.returncode != 0 and f"at '{path}'" in proc.stderr, proc.stderr


EMPTY_PULL_SECRETS = {
    "imagePullSecrets": [{"name": ""}, {}, {"name": None}],
    "global": {"imagePullSecrets": ["", {}, {"name": ""}]},
}
"""Found in review: refused by the schema, though the API server takes each (a warning) and an umbrella chart may
pass global.imagePullSecrets: [""]; values that installed no longer did."""


def test_empty_pull_secret_names_render_and_are_left_out(helm: Helm, tmp_path: Path) -> None:
    assert "imagePullSecrets" not in pod_spec(helm.render("--values", values_file(tmp_path, EMPTY_PULL_SECRETS)))
    values = {
        "imagePullSecrets": [{"name": ""}, {"name": "own"}, {}],
        # An entry with more than a name (another subchart's format): the name alone reaches the pod spec.
        "global": {"imagePullSecrets": ["", "shared", {"name": "own", "registry": "r.io"}, {"name": ""}]},
    }
    spec = pod_spec(helm.render("--values", values_file(tmp_path, values)))
    assert spec["imagePullSecrets"] == [{"name": "own"}, {"name": "shared"}]


def test_valid_names_and_peers_render(helm: Helm, tmp_path: Path) -> None:
    values = {
        "serviceAccount": {"name": "ops.gridshift-operator"},
        "priorityClassName": "system-cluster-critical",
        "imagePullSecrets": [{"name": "pull.example"}],
        "global": {"imagePullSecrets": ["shared", {"name": "other"}]},
        "networkPolicy": {
            "enabled": True,
            "metricsFrom": [
                {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}, "podSelector": {}},
                {"ipBlock": {"cidr": "10.0.0.0/8"}},
            ],
        },
    }
    objects = helm.render("--values", values_file(tmp_path, values))
    spec = pod_spec(objects)
    assert spec["serviceAccountName"] == "ops.gridshift-operator"
    assert spec["priorityClassName"] == "system-cluster-critical"
    assert len(only(objects, "NetworkPolicy")["spec"]["ingress"][1]["from"]) == 2


@pytest.mark.parametrize(
    ("release", "flags", "source", "kube"),
    [
        ("a.b", (), 'release name "a.b"', KUBE_VERSION),  # Helm takes dots in a release name; a Service name has none
        ("1gs", (), 'release name "1gs"', "1.30.0"),  # a letter first before Kubernetes 1.36
        ("gridshift", ("--set", "fullnameOverride=9gs"), 'fullnameOverride "9gs"', "1.35.2"),
    ],
)
def test_a_release_whose_metrics_service_name_is_invalid_is_refused_naming_it(
    helm: Helm, release: str, flags: tuple[str, ...], source: str, kube: str
) -> None:
    args = ("template", release, str(CHART_DIR), "--namespace", "gridshift-system", "--kube-version", kube)
    proc = helm.run(*args, *flags, check=False)
    assert proc.returncode != 0
    assert f"from the {source}), which the API server refuses: a Service name is a DNS-1035 label" in proc.stderr
    assert helm.run(*args, *flags, "--set", "metrics.service.enabled=false").returncode == 0
    assert helm.run(*args, *flags, "--set", "fullnameOverride=gs").returncode == 0


def test_a_release_name_with_a_digit_first_installs_from_kubernetes_1_36(helm: Helm) -> None:
    """1.36's API server takes a Service name with a digit first (KEP-5311, on by default): such a release is not
    refused there, as it must be before 1.36 (the test above)."""
    for release, flags in (("1gs", ()), ("gridshift", ("--set", "fullnameOverride=9gs"))):
        args = ("template", release, str(CHART_DIR), "--namespace", "gridshift-system", "--kube-version", KUBE_VERSION)
        assert helm.run(*args, *flags).returncode == 0
