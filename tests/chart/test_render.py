"""`helm lint` and `helm template` of the chart with the Go-built helm (no cluster needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridshift.settings import OperatorSettings
from gridshift_dev import chart as chart_cli

from .conftest import CHART_DIR, REPO_ROOT, Helm
from .test_rbac_static import HUB_CLUSTER_RULES, HUB_NAMESPACE_RULES, grants, rule_blocks


def only(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def kinds(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(o["kind"] for o in objects)


AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


def aggregated(o: dict[str, Any]) -> bool:
    """A user-facing role aggregated into view/edit/admin (templates/user-roles.yaml), not the operator's."""
    return any(key.startswith(AGGREGATE) for key in (o["metadata"].get("labels") or {}))


def operator_rbac(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if not aggregated(o)]


def operator_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = only(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return container


def test_lint_strict(helm: Helm) -> None:
    helm.run("lint", str(CHART_DIR), "--strict")
    helm.run(
        "lint",
        str(CHART_DIR),
        "--strict",
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--set",
        "networkPolicy.enabled=true",
    )


def test_default_objects(rendered: list[dict[str, Any]]) -> None:
    assert kinds(rendered) == sorted(
        ["CustomResourceDefinition"] * 3
        + ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount", "Deployment", "Service"]
        + ["ClusterRole"] * 3  # view, edit and platform-admin, aggregated into the user-facing roles
        + ["PodDisruptionBudget"]
        # Two warning policies: an unpinned engine image, a feed settings block its type does not name.
        + ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"] * 2
    )


def test_rbac_grants_exactly_what_the_operator_uses(rendered: list[dict[str, Any]]) -> None:
    ours = operator_rbac(rendered)
    assert grants(ours, "ClusterRole") == HUB_CLUSTER_RULES
    assert grants(ours, "Role") == HUB_NAMESPACE_RULES
    assert only(ours, "Role")["metadata"]["namespace"] == "gridshift-system"
    for rule in only(ours, "ClusterRole")["rules"] + only(ours, "Role")["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field]
        assert "resourceNames" not in rule or rule["resourceNames"]


def test_rendered_rules_keep_their_why_comments(helm: Helm) -> None:
    text = helm.template("--show-only", "templates/rbac.yaml").stdout
    blocks = rule_blocks(text)
    # Two rules list three resources each (list/watch of the kinds; patch of their status),
    # inferencedeployments appears in three rules (list/watch, patch, get), and leases in two (create;
    # get/update of the one Lease by name).
    assert len(blocks) == len(HUB_CLUSTER_RULES) - 2 + len(HUB_NAMESPACE_RULES) + 1
    assert all(above.startswith("# why: ") for above, _ in blocks)


def test_the_operator_reads_and_renews_only_its_own_lease(rendered: list[dict[str, Any]]) -> None:
    """create cannot be limited by name (the object does not exist yet); get and update can."""
    from gridshift.service.operator import LEASE_NAME

    leases = [r for r in only(operator_rbac(rendered), "Role")["rules"] if r["resources"] == ["leases"]]
    by_verbs = {tuple(sorted(r["verbs"])): r.get("resourceNames") for r in leases}
    assert by_verbs == {("create",): None, ("get", "update"): [LEASE_NAME]}


def test_http_routes_rule_is_optional(helm: Helm) -> None:
    cluster_role = only(operator_rbac(helm.render("--set", "rbac.httpRoutes=false")), "ClusterRole")
    assert "gateway.networking.k8s.io" not in {g for r in cluster_role["rules"] for g in r["apiGroups"]}


def test_security_context(rendered: list[dict[str, Any]]) -> None:
    pod = only(rendered, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


def test_probes_and_ports_follow_the_settings(helm: Helm) -> None:
    container = operator_container(
        helm.render("--set", "operator.probePort=8181", "--set", "operator.metricsPort=9191")
    )
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"probes": 8181, "metrics": 9191}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "probes"}
    # Review: kopf's --liveness binds one address family (0.0.0.0 refused an IPv6 single-stack cluster's
    # probes); /healthz is the operator's own (gridshift.shell.listeners), on operator.probePort.
    assert not [arg for arg in container["args"] if arg.startswith("--liveness")]
    assert {"name": "GRIDSHIFT_PROBE_PORT", "value": "8181"} in container["env"]
    assert container["command"] + container["args"][:4] == [
        "kopf",
        "run",
        "-m",
        "gridshift.shell.handlers",
        "--all-namespaces",
        "--standalone",
    ]


def test_env_loads_into_the_operator_settings(helm: Helm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every operator value reaches OperatorSettings under the right name, with its value."""
    overrides = {
        "planIntervalSeconds": 120.0,
        "movePenaltyUsd": 0.5,
        "prometheusUrl": "http://prom:9090",
        "metricsWindowSeconds": 600,
        "hubConnections": 8,
        "apiTimeoutSeconds": 2.5,
    }
    # A values file: `--set` turns 0.5 into a string, which the schema rightly refuses.
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump({"operator": overrides}))
    flags = ["--values", str(values_file)]
    container = operator_container(helm.render(*flags))
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert all(name.startswith("GRIDSHIFT_") for name in env)
    for name in list(os.environ):
        if name.startswith("GRIDSHIFT_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GRIDSHIFT_NAMESPACE", "gridshift-system")  # the downward API's job in the pod
    settings = OperatorSettings()
    assert settings.plan_interval_seconds == 120
    assert settings.move_penalty_usd == 0.5
    assert settings.prometheus_url == "http://prom:9090"
    assert settings.metrics_window_seconds == 600
    assert settings.api_timeout_seconds == 2.5
    defaults = OperatorSettings.model_fields
    set_names = {f"GRIDSHIFT_{name.upper()}" for name in defaults if defaults[name].default is not None} - {
        "GRIDSHIFT_NAMESPACE"
    }
    assert set_names <= set(env), "every non-null setting is passed"
    namespace_env = next(e for e in container["env"] if e["name"] == "GRIDSHIFT_NAMESPACE")
    assert namespace_env["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_crds_are_templated_kept_and_identical_to_crds_dir(rendered: list[dict[str, Any]]) -> None:
    crds = {o["metadata"]["name"]: o for o in rendered if o["kind"] == "CustomResourceDefinition"}
    for source in sorted((REPO_ROOT / "crds").glob("*.yaml")):
        expected = yaml.safe_load(source.read_text())
        crd = crds.pop(expected["metadata"]["name"])
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        # Found in review: Argo CD prunes a CRD despite keep (argoproj/argo-cd#17819), taking every object
        # of its kind, and the operator then removes their replicas; the crds/ files say the same.
        assert crd["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"
        assert expected["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"
        assert crd["spec"] == expected["spec"]
    assert not crds


def test_crds_opt_out_and_keep_off(helm: Helm) -> None:
    assert "CustomResourceDefinition" not in kinds(helm.render("--set", "crds.install=false"))
    unkept = [o for o in helm.render("--set", "crds.keep=false") if o["kind"] == "CustomResourceDefinition"]
    assert unkept and all("helm.sh/resource-policy" not in o["metadata"]["annotations"] for o in unkept)
    assert all(o["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false" for o in unkept)


def crd_annotations(helm: Helm, tmp_path: Path, values: dict[str, Any]) -> list[dict[str, str]]:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    proc = helm.template("--values", str(values_file), "--show-only", "templates/crds.yaml")
    documents = [d for d in yaml.safe_load_all(proc.stdout) if d]
    # Each key once: of a key written twice YAML keeps the last, and the parsed annotations hide the first.
    assert documents and proc.stdout.count("argocd.argoproj.io/sync-options:") == len(documents)
    return [d["metadata"]["annotations"] for d in documents]


def test_common_annotations_never_remove_the_crds_protection(helm: Helm, tmp_path: Path) -> None:
    # Found in review: commonAnnotations was appended after the CRDs' own annotations, so a common Argo CD
    # setting (sync-options: ServerSideApply=true) replaced Prune=false,Delete=false, and deleting the
    # Application deleted the CRDs with every InferenceDeployment.
    sync = "argocd.argoproj.io/sync-options"
    common = {sync: "ServerSideApply=true", "helm.sh/resource-policy": "delete", "team": "ml"}
    for crd in crd_annotations(helm, tmp_path, {"commonAnnotations": common}):
        assert crd[sync] == "ServerSideApply=true,Prune=false,Delete=false"
        assert crd["helm.sh/resource-policy"] == "keep"
        assert crd["team"] == "ml"
    # An option the chart sets is the chart's; the user's others stay, spaces and empty entries dropped.
    common = {sync: " Prune=true, ServerSideApply=true,Delete=true,"}
    for crd in crd_annotations(helm, tmp_path, {"commonAnnotations": common}):
        assert crd[sync] == "ServerSideApply=true,Prune=false,Delete=false"
    # keep off: the chart says only Prune=false, so the user's own Delete=false holds.
    values = {"crds": {"keep": False}, "commonAnnotations": {sync: "Delete=false,Prune=true"}}
    for crd in crd_annotations(helm, tmp_path, values):
        assert crd[sync] == "Delete=false,Prune=false"
        assert "helm.sh/resource-policy" not in crd


def test_pod_annotations_never_replace_the_settings_checksum(helm: Helm) -> None:
    # Same pattern (found in review): podAnnotations was appended after the checksum that rolls the pods
    # when a setting changes, so a copied checksum/operator-settings pinned it and settings changes never rolled.
    def pod_annotations(*args: str) -> dict[str, str]:
        found: dict[str, str] = only(helm.render(*args), "Deployment")["spec"]["template"]["metadata"]["annotations"]
        return found

    checksum = pod_annotations()["checksum/operator-settings"]
    pinned = pod_annotations("--set", "podAnnotations.checksum/operator-settings=x", "--set", "podAnnotations.team=ml")
    assert pinned == {"checksum/operator-settings": checksum, "team": "ml"}


def test_optional_monitoring_networkpolicy_and_extra_objects(helm: Helm, tmp_path: Path) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(
        yaml.safe_dump(
            {
                "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
                "networkPolicy": {"enabled": True},
                "extraObjects": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "{{ .Release.Name }}-x"}},
                    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}-y\n",
                ],
            }
        )
    )
    objects = helm.render("--values", str(values_file))
    monitor = only(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    service = only(objects, "Service")
    assert service["spec"]["ports"][0]["name"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    rule = only(objects, "PrometheusRule")
    plain = yaml.safe_load((CHART_DIR / "files" / "prometheus" / "gridshift.rules.yaml").read_text())
    assert rule["spec"] == plain
    policy = only(objects, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert {p["port"] for r in policy["spec"]["ingress"] for p in r["ports"]} == {"probes", "metrics"}
    assert only(objects, "ConfigMap")["metadata"]["name"] == "gridshift-x"
    assert only(objects, "Secret")["metadata"]["name"] == "gridshift-y"


def test_pdb_only_with_several_replicas(helm: Helm) -> None:
    assert "PodDisruptionBudget" not in kinds(helm.render("--set", "replicaCount=1"))


@pytest.mark.parametrize(
    ("flag", "named"),
    [
        ("operator.planIntervalSecs=3", "planIntervalSecs"),
        ("replicas=3", "replicas"),
        ("metrics.serviceMonitor.enable=true", "enable"),
        ("operator.planIntervalSeconds=0", "planIntervalSeconds"),
        # Review: a null (the documented way to leave a setting to the operator) rendered an empty
        # containerPort or a lease check against <nil> for the keys the templates read themselves.
        ("operator.probePort=null", "probePort"),
        ("operator.metricsPort=null", "metricsPort"),
        ("operator.leaseDurationSeconds=null", "leaseDurationSeconds"),
        # Review: the apiserver refuses a liveness probe's successThreshold other than 1, after the render.
        ("probes.liveness.successThreshold=2", "successThreshold"),
        # Review: a null passed the schema (Helm drops the key) and gave a YAML parse error naming no value
        # (probes.readiness), `image: "%!s(<nil>):0.1.0"` (image.repository), an empty maxUnavailable or
        # Service type, an unset replica count, CRDs without delete protection (crds.keep), the operator's
        # region labels renamed exported_region (honorLabels), or a nil-pointer template error (a whole map).
        ("probes.readiness=null", "at '/probes': missing property 'readiness'"),
        ("probes.liveness=null", "at '/probes': missing property 'liveness'"),
        ("image.repository=null", "at '/image': missing property 'repository'"),
        ("podDisruptionBudget.maxUnavailable=null", "missing property 'maxUnavailable'"),
        ("metrics.service.type=null", "at '/metrics/service': missing property 'type'"),
        ("replicaCount=null", "missing property 'replicaCount'"),
        ("command=null", "missing property 'command'"),
        ("crds.keep=null", "at '/crds': missing property 'keep'"),
        ("metrics.serviceMonitor.honorLabels=null", "missing property 'honorLabels'"),
        ("probes=null", "missing property 'probes'"),
        ("metrics.podMonitor=null", "missing property 'podMonitor'"),
        # Review: not a Prometheus label name, so every PromQL query failed at run time.
        ("operator.metricsClusterLabel=k8s-cluster", "metricsClusterLabel"),
        ("operator.metricsClusterLabel=__name__", "metricsClusterLabel"),
    ],
)
def test_typos_and_bad_values_fail_with_the_key_named(helm: Helm, flag: str, named: str) -> None:
    proc = helm.template("--set", flag, check=False)
    assert proc.returncode != 0
    assert "values don't meet the specifications of the schema" in proc.stderr
    assert named in proc.stderr


def test_camel_case_keys_become_the_settings_env_names(rendered: list[dict[str, Any]]) -> None:
    names = {e["name"] for e in operator_container(rendered)["env"]}
    for field in OperatorSettings.model_fields:
        if OperatorSettings.model_fields[field].default is not None:
            assert f"GRIDSHIFT_{field.upper()}" in names, chart_cli.camel_case(field)


def test_user_roles_keep_member_cluster_access_away_from_namespace_editors(helm: Helm) -> None:
    roles = {o["metadata"]["name"]: o for o in helm.render() if o["kind"] == "ClusterRole" and aggregated(o)}
    into = {
        name: {key.removeprefix(AGGREGATE) for key in role["metadata"]["labels"] if key.startswith(AGGREGATE)}
        for name, role in roles.items()
    }
    writes = {"create", "update", "patch", "delete"}
    written_by = {}
    for name, role in roles.items():
        for (_, resource), verbs in grants([role], "ClusterRole").items():
            if verbs & writes:
                written_by.setdefault(resource, set()).update(into[name])
    # RegionalClusters name member kubeconfigs and feed endpoints: admin only, never edit.
    assert written_by == {
        "inferencedeployments": {"edit", "admin"},
        "regionalclusters": {"admin"},
        "gpuprofiles": {"admin"},
    }
    assert not [o for o in helm.render("--set", "rbac.userRoles=false") if o["kind"] == "ClusterRole" and aggregated(o)]


def test_image_is_pinned_by_digest_when_one_is_given(helm: Helm) -> None:
    digest = "sha256:" + "0123456789abcdef" * 4
    assert operator_container(helm.render())["image"] == "ghcr.io/gridshift/gridshift:0.1.0"
    pinned = operator_container(helm.render("--set", f"image.digest={digest}", "--set", "image.tag=v9"))
    assert pinned["image"] == f"ghcr.io/gridshift/gridshift:v9@{digest}"


def test_probe_and_metrics_ports_must_differ(helm: Helm) -> None:
    # Review, 3 December: the schema took probePort == metricsPort, and one of the two servers then
    # failed to bind at start.
    proc = helm.template("--set", "operator.probePort=9090", "--set", "operator.metricsPort=9090", check=False)
    assert proc.returncode != 0 and "probePort and metricsPort are both 9090" in proc.stderr


def test_metrics_service_labels_may_not_hide_it_from_its_service_monitor(helm: Helm) -> None:
    # Found in review: a label of metrics.service.labels named like one the ServiceMonitor selects by was
    # written a second time after the chart's; YAML keeps the last, and Prometheus silently scraped nothing.
    proc = helm.template(
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.service.labels.app\\.kubernetes\\.io/component=x",
        check=False,
    )
    assert proc.returncode != 0
    assert "metrics.service.labels: app.kubernetes.io/component is one of the labels" in proc.stderr
    fine = helm.render("--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.service.labels.team=ml")
    service = next(o for o in fine if o["kind"] == "Service" and o["metadata"]["name"].endswith("-metrics"))
    assert service["metadata"]["labels"]["team"] == "ml"


@pytest.mark.parametrize("monitor", ["serviceMonitor", "podMonitor"])
def test_scrape_timeout_never_exceeds_the_interval(helm: Helm, monitor: str) -> None:
    # Found in review: the 10s default timeout rendered over a 5s interval, and Prometheus refused the
    # whole scrape config. Empty (the default) is the shorter of 10s and the interval.
    key = f"metrics.{monitor}"
    kind = monitor[0].upper() + monitor[1:]

    def endpoint(*flags: str) -> dict[str, Any]:
        objects = helm.render("--set", f"{key}.enabled=true", *flags)
        spec = only(objects, kind)["spec"]
        found: dict[str, Any] = (spec.get("endpoints") or spec["podMetricsEndpoints"])[0]
        return found

    assert endpoint()["scrapeTimeout"] == "10s"
    assert endpoint("--set", f"{key}.interval=5s")["scrapeTimeout"] == "5s"
    assert endpoint("--set", f"{key}.interval=500ms")["scrapeTimeout"] == "500ms"
    assert endpoint("--set", f"{key}.interval=1m", "--set", f"{key}.scrapeTimeout=45s")["scrapeTimeout"] == "45s"
    assert (
        endpoint("--set", f"{key}.interval=1m", "--set", f"{key}.scrapeTimeout=60000ms")["scrapeTimeout"] == "60000ms"
    )
    proc = helm.template(
        "--set", f"{key}.enabled=true", "--set", f"{key}.interval=5s", "--set", f"{key}.scrapeTimeout=10s", check=False
    )
    assert proc.returncode != 0
    assert f"{key}.scrapeTimeout 10s is longer than {key}.interval 5s" in proc.stderr
    compound = helm.template("--set", f"{key}.enabled=true", "--set", f"{key}.scrapeTimeout=1m30s", check=False)
    assert compound.returncode != 0 and "scrapeTimeout" in compound.stderr


def test_labels_set_by_the_chart_and_by_values_are_one_map_on_every_object(helm: Helm) -> None:
    # Found in review: each object's labels were the chart's lines with commonLabels and its own labels
    # appended, so app.kubernetes.io/part-of (or a key in two of the maps) was written twice in one mapping.
    objects = helm.render(  # Helm.render refuses a key written twice
        "--set-json", 'commonLabels={"app.kubernetes.io/part-of": "acme", "team": "common"}',
        "--set-json", 'podLabels={"team": "pod"}',
        "--set-json", 'serviceAccount.labels={"team": "sa"}',
        "--set-json", 'metrics.service.labels={"team": "svc"}',
        "--set", "metrics.serviceMonitor.enabled=true",
        "--set-json", 'metrics.serviceMonitor.labels={"team": "sm"}',
    )  # fmt: skip
    for o in objects:
        labels = o["metadata"].get("labels", {})
        if labels.get("app.kubernetes.io/instance"):  # the chart's objects (CRDs included)
            assert labels["app.kubernetes.io/part-of"] == "acme", (o["kind"], labels)
    assert only(objects, "ServiceAccount")["metadata"]["labels"]["team"] == "sa"
    assert only(objects, "ServiceMonitor")["metadata"]["labels"]["team"] == "sm"
    assert only(objects, "Deployment")["metadata"]["labels"]["team"] == "common"
    service = only(objects, "Service")["metadata"]["labels"]
    assert (service["team"], service["app.kubernetes.io/component"]) == ("svc", "metrics")
    pod = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert (pod["team"], pod["app.kubernetes.io/part-of"], pod["app.kubernetes.io/name"]) == (
        "pod",
        "acme",
        "gridshift",
    )


def test_an_empty_label_value_keeps_its_precedence(helm: Helm) -> None:
    # Found in review of the one-map labels: sprig's merge takes "" for no value and filled it from the map
    # below, so an object's own empty label gave way to commonLabels' value, and commonLabels' to global's.
    objects = helm.render(
        "--set", "global.commonLabels.g=global", "--set", "commonLabels.g=",
        "--set", "commonLabels.e=common", "--set", "podLabels.e=", "--set", "serviceAccount.labels.e=",
    )  # fmt: skip
    assert only(objects, "ServiceAccount")["metadata"]["labels"]["e"] == ""
    pod = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert (pod["e"], pod["g"]) == ("", "")
    assert only(objects, "Deployment")["metadata"]["labels"]["g"] == ""


def test_an_empty_annotation_value_keeps_its_precedence(helm: Helm) -> None:
    # Found in review: the annotations were still `merge`d after the labels were layered, so an object's own
    # empty annotation gave way to commonAnnotations' value, though values.yaml says the object's own wins.
    objects = helm.render(
        "--set-json", 'commonAnnotations={"team": "ml", "owner": "platform"}',
        "--set-json", 'deploymentAnnotations={"team": ""}', "--set-json", 'serviceAccount.annotations={"owner": ""}',
    )  # fmt: skip
    assert only(objects, "Deployment")["metadata"]["annotations"] == {"team": "", "owner": "platform"}
    assert only(objects, "ServiceAccount")["metadata"]["annotations"] == {"team": "ml", "owner": ""}


def test_the_view_role_reads_every_gridshift_kind_and_its_status(rendered: list[dict[str, Any]]) -> None:
    # Found in review: docs/rbac.md says gridshift-view reads the three kinds and their status, and the role
    # left out gpuprofiles/status (a GPUProfile's fit). Read from the CRDs, so a new kind is held to it too.
    crds = [o for o in rendered if o["kind"] == "CustomResourceDefinition"]
    expected = set()
    for crd in crds:
        plural = crd["spec"]["names"]["plural"]
        expected.add(plural)
        if any("status" in (version.get("subresources") or {}) for version in crd["spec"]["versions"]):
            expected.add(f"{plural}/status")
    view = next(o for o in rendered if o["kind"] == "ClusterRole" and o["metadata"]["name"].endswith("-view"))
    table = grants([view], "ClusterRole")
    assert {resource for (group, resource) in table if group == "gridshift.dev"} == expected
    assert all(verbs == {"get", "list", "watch"} for verbs in table.values())
