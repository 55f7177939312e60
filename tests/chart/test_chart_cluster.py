"""The chart on a real hub kube-apiserver (built from Go modules by e2e/cluster): server-side dry
run, install, upgrade, schema refusal, and least-privilege RBAC proven with impersonation and with
the operator's own hub adapter running as the chart's ServiceAccount."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridshift.service.operator import LEASE_NAME

from .conftest import CHART_DIR, KUBE_VERSION, REPO_ROOT, Helm, Hub, Release

pytestmark = pytest.mark.cluster


def can_i(
    hub: Hub, user: str, verb: str, resource: str, namespace: str | None = None, subresource: str = "", name: str = ""
) -> bool:
    """The API server's own answer (a SubjectAccessReview, what `kubectl auth can-i --as` asks).

    Unlike `can-i`, it needs no discovery of the resource (Gateway API CRDs are not installed on the
    hub) and it carries the ServiceAccount's groups, as a real token would.
    """
    plural, _, group = resource.partition(".")
    groups = ["system:authenticated"]
    if user.startswith("system:serviceaccount:"):
        groups += ["system:serviceaccounts", f"system:serviceaccounts:{user.split(':')[2]}"]
    attributes = {"verb": verb, "group": group, "resource": plural, "subresource": subresource}
    if namespace:
        attributes["namespace"] = namespace
    if name:
        attributes["name"] = name
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": groups, "resourceAttributes": attributes},
    }
    answer = json.loads(hub.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review)).stdout)
    return bool(answer["status"].get("allowed"))


def test_template_applies_with_server_side_dry_run(helm: Helm, hub: Hub) -> None:
    namespace = f"gs-dry-{uuid.uuid4().hex[:6]}"
    hub.kubectl("create", "namespace", namespace)
    try:
        manifest = helm.run(
            "template",
            "gridshift",
            str(CHART_DIR),
            "--namespace",
            namespace,
            "--kube-version",
            KUBE_VERSION,
            "--set",
            "networkPolicy.enabled=true",
        ).stdout
        objects = len([d for d in yaml.safe_load_all(manifest) if d])
        # Client-side apply as in `helm template | kubectl apply --dry-run=server -f -`, then server-side
        # apply, whose typed patch also checks every field against the API's schema. Its cluster-scoped
        # objects have the names of the release `installed_chart` may have made already (other suites
        # install it first): taking their fields over is fine in a dry run, and not what is tested here.
        for mode in ([], ["--server-side", "--force-conflicts"]):
            proc = hub.kubectl("apply", "--dry-run=server", *mode, "-f", "-", input=manifest)
            applied = [line for line in proc.stdout.splitlines() if "(server dry run)" in line]
            assert len(applied) == objects, mode
            assert any("customresourcedefinition" in line for line in applied)
    finally:
        hub.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_empty_pull_secret_names_reach_the_api_server_as_no_entry(helm: Helm, hub: Hub) -> None:
    # Found in review: the schema refused them, though the API server takes them with a warning; now they render
    # as no entry at all, so there is no warning either.
    empty = '[{"name": ""}, {}]'
    manifest = helm.run(
        "template", "gridshift", str(CHART_DIR), "--namespace", "default", "--kube-version", KUBE_VERSION,
        "--set-json", f"imagePullSecrets={empty}", "--set-json", 'global.imagePullSecrets=["", "shared"]',
        "--show-only", "templates/deployment.yaml",
    ).stdout  # fmt: skip
    deployment = yaml.safe_load(manifest)
    assert deployment["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "shared"}]
    proc = hub.kubectl("apply", "--dry-run=server", "-f", "-", input=manifest)
    assert "(server dry run)" in proc.stdout and "Warning" not in proc.stderr, proc.stderr


def test_install_creates_every_object_and_working_crds(hub: Hub, installed_chart: Release) -> None:
    ns = installed_chart.namespace
    for kind in ("deployment", "serviceaccount", "role", "rolebinding", "service", "poddisruptionbudget"):
        assert hub.kubectl("get", kind, "gridshift", "-n", ns, check=False).returncode == 0 or kind == "service"
    assert hub.kubectl("get", "service", "gridshift-metrics", "-n", ns).returncode == 0
    for name in ("inferencedeployments", "regionalclusters", "gpuprofiles"):
        hub.kubectl("wait", "--for=condition=Established", f"crd/{name}.gridshift.dev", "--timeout=60s")
    # A real object of each kind is accepted by the templated CRDs.
    example = (REPO_ROOT / "examples" / "gpuprofile-llama3-8b-h100.yaml").read_text()
    hub.kubectl("apply", "--dry-run=server", "-f", "-", input=example)


def test_upgrade_changes_the_settings_and_keeps_the_crds(helm: Helm, hub: Hub, installed_chart: Release) -> None:
    ns = installed_chart.namespace
    helm.run(
        "upgrade",
        installed_chart.name,
        str(CHART_DIR),
        "--namespace",
        ns,
        "--set",  # values given again, as the README says (never --reuse-values)
        "operator.planIntervalSeconds=30",
        kubeconfig=hub.kubeconfig,
    )
    deployment = yaml.safe_load(hub.kubectl("get", "deployment", "gridshift", "-n", ns, "-o", "yaml").stdout)
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GRIDSHIFT_PLAN_INTERVAL_SECONDS"] == "30"
    history = yaml.safe_load(
        helm.run("history", installed_chart.name, "-n", ns, "-o", "yaml", kubeconfig=hub.kubeconfig).stdout
    )
    assert [h["status"] for h in history][-1] == "deployed" and len(history) >= 2
    crd = yaml.safe_load(hub.kubectl("get", "crd", "inferencedeployments.gridshift.dev", "-o", "yaml").stdout)
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_notes_crd_command_takes_over_crds_an_earlier_release_wrote(
    helm: Helm, hub: Hub, installed_chart: Release
) -> None:
    """The crds.install=false notes' command applied over CRDs Helm wrote, as an older chart had them.

    Found in review: without --force-conflicts the server-side apply was refused, a conflict with "helm",
    for every field the new version changes. An older CRD is stood in for by one field Helm wrote (manager
    "helm", as `helm upgrade` writes) with another value."""
    import shlex

    from .test_standards import pasted_commands

    crd = "regionalclusters.gridshift.dev"
    hub.kubectl(
        "patch", "crd", crd, "--field-manager=helm", "--type=json",
        "-p", '[{"op":"replace","path":"/spec/versions/0/schema/openAPIV3Schema/description","value":"older"}]',
    )  # fmt: skip
    (command,) = [
        c for c in pasted_commands(helm.notes("--set", "crds.install=false")) if c.startswith("helm template")
    ]
    rendering, applying = command.replace("\\\n", " ").split(" | ")
    args = shlex.split(rendering)
    manifest = helm.run("template", args[2], str(CHART_DIR), *args[6:]).stdout  # the chart here, not the registry's
    proc = hub.kubectl(*shlex.split(applying)[1:], input=manifest, check=False)
    assert proc.returncode == 0, proc.stderr
    stored = yaml.safe_load(hub.kubectl("get", "crd", crd, "-o", "yaml").stdout)
    assert stored["spec"]["versions"][0]["schema"]["openAPIV3Schema"].get("description") != "older"


def test_an_upgrade_changing_the_deployments_selector_is_refused_naming_name_override(
    helm: Helm, hub: Hub, installed_chart: Release
) -> None:
    # Found in review: release "gridshift" keeps its full name with nameOverride=shift, so its Deployment's
    # immutable selector would change; the upgrade failed with the API server's "field is immutable".
    ns = installed_chart.namespace
    before = hub.kubectl("get", "deployment", "gridshift", "-n", ns, "-o", "jsonpath={.metadata.generation}").stdout
    proc = helm.run(
        "upgrade", installed_chart.name, str(CHART_DIR), "--namespace", ns, "--set", "nameOverride=shift",
        kubeconfig=hub.kubeconfig, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert 'nameOverride: "shift" would change the selector of Deployment' in proc.stderr, proc.stderr
    assert "app.kubernetes.io/name=gridshift to shift" in proc.stderr, proc.stderr
    after = hub.kubectl("get", "deployment", "gridshift", "-n", ns, "-o", "jsonpath={.metadata.generation}").stdout
    assert after == before
    # `helm template` asks no cluster (lookup finds nothing): the value renders.
    assert helm.run("template", "gridshift", str(CHART_DIR), "--set", "nameOverride=shift").returncode == 0
    # Another release whose names collide is Helm's to refuse: found in regression review, it was told to keep
    # the nameOverride "this release was installed with", though it was never installed.
    proc = helm.run(
        "install", "other", str(CHART_DIR), "--namespace", ns, "--set", "fullnameOverride=gridshift",
        "--set", "nameOverride=foo", "--set", "crds.install=false", kubeconfig=hub.kubeconfig, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "nameOverride" not in proc.stderr, proc.stderr
    assert "cannot be imported into the current release" in proc.stderr, proc.stderr


def test_a_second_hub_operator_in_another_namespace_is_refused_naming_the_first(
    helm: Helm, hub: Hub, installed_chart: Release
) -> None:
    # Found in review: a second release in another namespace deployed cleanly; its leader Lease is its namespace's,
    # so both operators would lead and act on the same InferenceDeployments.
    first = installed_chart
    namespace = f"gs-second-{uuid.uuid4().hex[:6]}"
    second = ["second", str(CHART_DIR), "--namespace", namespace, "--set", "crds.install=false"]
    try:
        proc = helm.run("install", *second, "--create-namespace", kubeconfig=hub.kubeconfig, check=False)
        assert proc.returncode != 0
        assert "another gridshift hub operator runs in this cluster" in proc.stderr, proc.stderr
        assert f"Deployment {first.namespace}/gridshift of release {first.name} in namespace {first.namespace}" in (
            proc.stderr
        )
        assert f"helm uninstall {first.name} --namespace {first.namespace}" in proc.stderr, proc.stderr
        assert "second" not in helm.run("list", "-A", "-q", kubeconfig=hub.kubeconfig).stdout.split()
        assert hub.kubectl("get", "deployment", "-n", namespace, "-o", "name").stdout.strip() == ""
        # A server dry run asks the cluster too; `helm template` does not, and renders.
        dry = helm.run("install", *second, "--dry-run=server", kubeconfig=hub.kubeconfig, check=False)
        assert dry.returncode != 0 and "another gridshift hub operator" in dry.stderr, dry.stderr
        assert helm.run("template", *second, kubeconfig=hub.kubeconfig).returncode == 0
    finally:
        helm.run("uninstall", "second", "--namespace", namespace, kubeconfig=hub.kubeconfig, check=False)
        hub.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    # The first release finds only its own operator: its upgrades go on.
    helm.run("upgrade", first.name, str(CHART_DIR), "--namespace", first.namespace, kubeconfig=hub.kubeconfig)
    history = yaml.safe_load(
        helm.run("history", first.name, "-n", first.namespace, "-o", "yaml", kubeconfig=hub.kubeconfig).stdout
    )
    assert history[-1]["status"] == "deployed"


# The API server lists Deployments by namespace, then name, and the check names the first it finds: these tests'
# namespaces sort before installed_chart's (gs-chart-), so that the old check, which counted them, named them.
SORTS_FIRST = "gs-a"


def _second_install_refusal(helm: Helm, hub: Hub) -> str:
    """The refusal of a server dry run of another release, with installed_chart's operator running."""
    args = ["second", str(CHART_DIR), "--namespace", f"gs-second-{uuid.uuid4().hex[:6]}", "--set", "crds.install=false"]
    proc = helm.run("install", *args, "--dry-run=server", kubeconfig=hub.kubeconfig, check=False)
    assert proc.returncode != 0 and "another gridshift hub operator runs in this cluster" in proc.stderr, proc.stderr
    return proc.stderr


def test_the_single_operator_check_finds_the_chart_installed_under_an_alias(
    helm: Helm, hub: Hub, installed_chart: Release, tmp_path: Path
) -> None:
    # Found in review: a subchart under an alias is named the alias (helm.sh/chart: hub-0.1.0), which the check,
    # knowing the operator by helm.sh/chart gridshift-<version>, passed over.
    umbrella = tmp_path / "platform"
    (umbrella / "templates").mkdir(parents=True)
    dependency = {"name": "gridshift", "alias": "hub", "version": "0.1.0", "repository": f"file://{CHART_DIR}"}
    chart = {"apiVersion": "v2", "name": "platform", "version": "1.0.0", "dependencies": [dependency]}
    (umbrella / "Chart.yaml").write_text(yaml.safe_dump(chart))
    helm.run("dependency", "build", str(umbrella))
    namespace = f"{SORTS_FIRST}-alias-{uuid.uuid4().hex[:6]}"
    try:
        helm.run(
            "install", "platform", str(umbrella), "--namespace", namespace, "--create-namespace",
            "--set", "hub.singleOperatorCheck=false", "--set", "hub.crds.install=false", kubeconfig=hub.kubeconfig,
        )  # fmt: skip
        assert f"Deployment {namespace}/platform-hub of release platform" in _second_install_refusal(helm, hub)
    finally:
        helm.run("uninstall", "platform", "--namespace", namespace, kubeconfig=hub.kubeconfig, check=False)
        hub.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_the_single_operator_check_counts_an_operator_being_deleted_and_says_so(helm: Helm, hub: Hub) -> None:
    # Found in review: skipped while being deleted (a Deployment kept by a finalizer after its release's uninstall),
    # a second release installed beside its still running pods: Helm's default background cascade leaves them until
    # the Deployment object is gone, so two operators led. It counts until gone, and the refusal says why.
    namespace = f"{SORTS_FIRST}-leaving-{uuid.uuid4().hex[:6]}"
    hub.kubectl("create", "namespace", namespace)
    rendered = helm.run(
        "template", "leaving", str(CHART_DIR), "--namespace", namespace, "--kube-version", KUBE_VERSION,
        "--show-only", "templates/deployment.yaml",
    ).stdout  # fmt: skip
    deployment = yaml.safe_load(rendered)
    deployment["metadata"]["finalizers"] = ["gridshift.dev/test-hold"]
    name = deployment["metadata"]["name"]
    try:
        hub.kubectl("create", "-f", "-", input=json.dumps(deployment))
        assert f"Deployment {namespace}/{name} " in _second_install_refusal(helm, hub)  # counted while it runs
        hub.kubectl("delete", "deployment", name, "-n", namespace, "--wait=false")
        deleted = hub.kubectl(
            "get", "deployment", name, "-n", namespace, "-o", "jsonpath={.metadata.deletionTimestamp}"
        )
        assert deleted.stdout
        refusal = _second_install_refusal(helm, hub)
        assert f"Deployment {namespace}/{name} " in refusal, refusal
        assert f"(being deleted since {deleted.stdout}; its pods may still run: wait until it is gone" in refusal
    finally:
        hub.kubectl(
            "patch", "deployment", name, "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
            check=False,
        )  # fmt: skip
        hub.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_install_with_a_typo_is_refused(helm: Helm, hub: Hub) -> None:
    proc = helm.run(
        "install",
        "typo",
        str(CHART_DIR),
        "--namespace",
        "default",
        "--set",
        "operator.planIntervalSecs=3",
        kubeconfig=hub.kubeconfig,
        check=False,
    )
    assert proc.returncode != 0
    assert "additional properties 'planIntervalSecs' not allowed" in proc.stderr
    assert "typo" not in helm.run("list", "-n", "default", "-q", kubeconfig=hub.kubeconfig).stdout.split()


ALLOWED = [
    ("list", "inferencedeployments.gridshift.dev", None, ""),
    ("watch", "inferencedeployments.gridshift.dev", None, ""),
    ("watch", "regionalclusters.gridshift.dev", None, ""),
    ("watch", "gpuprofiles.gridshift.dev", None, ""),
    ("patch", "inferencedeployments.gridshift.dev", "llm", ""),
    ("patch", "inferencedeployments.gridshift.dev", "llm", "status"),
    ("patch", "regionalclusters.gridshift.dev", None, "status"),
    ("patch", "gpuprofiles.gridshift.dev", None, "status"),
    ("create", "events", "llm", ""),
    ("create", "events.events.k8s.io", "llm", ""),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io", None, ""),
    ("get", "namespaces", None, ""),
    ("get", "inferencedeployments.gridshift.dev", "llm", ""),
    ("list", "regionalclusters.gridshift.dev", None, ""),
    ("patch", "httproutes.gateway.networking.k8s.io", "llm", ""),
]
DENIED = [
    ("list", "secrets", None, ""),
    ("list", "secrets", "RELEASE", ""),
    ("get", "secrets", "kube-system", ""),
    ("create", "secrets", "RELEASE", ""),
    ("create", "deployments.apps", "RELEASE", ""),
    ("create", "pods", "llm", ""),
    ("update", "inferencedeployments.gridshift.dev", "llm", ""),
    ("delete", "inferencedeployments.gridshift.dev", "llm", ""),
    ("create", "inferencedeployments.gridshift.dev", "llm", ""),
    ("patch", "regionalclusters.gridshift.dev", None, ""),
    ("patch", "gpuprofiles.gridshift.dev", None, ""),
    ("create", "leases.coordination.k8s.io", "kube-system", ""),
    ("delete", "leases.coordination.k8s.io", "RELEASE", ""),
    ("create", "customresourcedefinitions.apiextensions.k8s.io", None, ""),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", None, ""),
    ("delete", "events", "llm", ""),
    ("patch", "events", "llm", ""),  # kopf only posts core Events
    ("get", "inferencedeployments.gridshift.dev", "llm", "status"),  # status is patched, never read
    ("list", "namespaces", None, ""),  # kopf's cluster-wide mode lists no namespaces
    ("watch", "namespaces", None, ""),
    ("get", "nodes", None, ""),
    ("patch", "namespaces", None, ""),
    ("update", "httproutes.gateway.networking.k8s.io", "llm", ""),
]


def test_service_account_can_do_what_the_operator_does(hub: Hub, installed_chart: Release) -> None:
    user = installed_chart.username
    ns = installed_chart.namespace
    checks = [
        *ALLOWED,
        ("get", "secrets", ns, ""),
        ("create", "leases.coordination.k8s.io", ns, ""),
    ]
    refused = [c for c in checks if not can_i(hub, user, c[0], c[1], c[2], c[3])]
    assert refused == []
    for verb in ("get", "update"):  # the one Lease, and no other in the namespace
        assert can_i(hub, user, verb, "leases.coordination.k8s.io", ns, name=LEASE_NAME)
        assert not can_i(hub, user, verb, "leases.coordination.k8s.io", ns, name="someone-elses-lease")


def test_service_account_cannot_do_anything_else(hub: Hub, installed_chart: Release) -> None:
    user = installed_chart.username
    checks = [(v, r, installed_chart.namespace if n == "RELEASE" else n, s) for v, r, n, s in DENIED]
    granted = [c for c in checks if can_i(hub, user, c[0], c[1], c[2], c[3])]
    assert granted == []


def test_namespace_editors_deploy_models_but_only_admins_register_clusters(hub: Hub, installed_chart: Release) -> None:
    """The chart's user roles, aggregated by the real controller-manager into Kubernetes' edit and admin."""
    team = f"team-{uuid.uuid4().hex[:6]}"
    hub.kubectl("create", "namespace", team)
    hub.kubectl("create", "rolebinding", "alice-edit", "--clusterrole=edit", "--user=alice", "-n", team)
    hub.kubectl("create", "clusterrolebinding", f"{team}-root", "--clusterrole=admin", f"--user=root-{team}")
    try:
        deadline = time.monotonic() + 60
        while not can_i(hub, "alice", "create", "inferencedeployments.gridshift.dev", team):
            assert time.monotonic() < deadline, "edit never aggregated InferenceDeployment write"
            time.sleep(1)
        assert not can_i(hub, "alice", "create", "inferencedeployments.gridshift.dev", "default")
        assert not can_i(hub, "alice", "create", "regionalclusters.gridshift.dev")
        assert not can_i(hub, "alice", "patch", "inferencedeployments.gridshift.dev", team, "status")
        assert can_i(hub, "alice", "get", "inferencedeployments.gridshift.dev", team, "status")
        deadline = time.monotonic() + 60
        while not can_i(hub, f"root-{team}", "create", "regionalclusters.gridshift.dev"):
            assert time.monotonic() < deadline, "admin never aggregated RegionalCluster write"
            time.sleep(1)
        # docs/rbac.md: gridshift-view (aggregated into view, edit and admin) reads every kind's status; review
        # found gpuprofiles/status missing.
        while not can_i(hub, f"root-{team}", "get", "gpuprofiles.gridshift.dev", subresource="status"):
            assert time.monotonic() < deadline, "admin never aggregated GPUProfile status read"
            time.sleep(1)
    finally:
        hub.kubectl("delete", "clusterrolebinding", f"{team}-root", check=False)
        hub.kubectl("delete", "namespace", team, "--wait=false", check=False)


def test_can_i_list_has_no_wildcards(hub: Hub, installed_chart: Release) -> None:
    rows = hub.kubectl("auth", "can-i", "--list", "--as", installed_chart.username, "-n", installed_chart.namespace)
    ours = [
        line for line in rows.stdout.splitlines() if "gridshift.dev" in line or "secrets" in line or "leases" in line
    ]
    assert ours and not [line for line in ours if "[*]" in line]
    secrets = next(line for line in ours if line.startswith("secrets "))
    assert secrets.split()[-1] == "[get]"


def test_hub_adapter_works_as_the_chart_service_account(
    hub: Hub, installed_chart: Release, chart_sa_api_client: Any
) -> None:
    """gridshift's own hub adapter (secrets, status patches, events, the leader Lease) as the chart's SA."""
    from gridshift.hub.client import KubeHub, LeaseRecord, ObjectRef, SecretMissing, SecretPurpose
    from gridshift.hub.lease import LeaderElector, LeaseTiming

    ns = installed_chart.namespace
    workload_ns = f"gs-idep-{uuid.uuid4().hex[:6]}"
    hub.kubectl("create", "namespace", workload_ns)
    try:
        example = yaml.safe_load((REPO_ROOT / "examples" / "inferencedeployment-llama3-8b.yaml").read_text())
        example["metadata"]["namespace"] = workload_ns
        hub.kubectl("apply", "-f", "-", input=yaml.safe_dump(example))
        hub.kubectl(
            "create", "secret", "generic", "eu-de-kubeconfig", "-n", ns, "--from-literal=kubeconfig=apiVersion: v1"
        )
        adapter = KubeHub(chart_sa_api_client)
        with pytest.raises(SecretMissing, match=r"not labelled gridshift\.dev/secret-purpose=member-kubeconfig"):
            adapter.read_secret(ns, "eu-de-kubeconfig", "kubeconfig", SecretPurpose.MEMBER_KUBECONFIG)
        hub.kubectl("label", "secret", "eu-de-kubeconfig", "-n", ns, "gridshift.dev/secret-purpose=member-kubeconfig")
        assert (
            adapter.read_secret(ns, "eu-de-kubeconfig", "kubeconfig", SecretPurpose.MEMBER_KUBECONFIG)
            == "apiVersion: v1"
        )
        with pytest.raises(SecretMissing, match="price-feed-token"):
            adapter.read_secret(ns, "eu-de-kubeconfig", "kubeconfig", SecretPurpose.PRICE_FEED_TOKEN)
        ref = ObjectRef("InferenceDeployment", workload_ns, example["metadata"]["name"])
        adapter.patch_status(
            ref,
            {
                "readyReplicas": 0,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "False",
                        "reason": "Starting",
                        "message": "0/2",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ],
            },
        )
        adapter.emit_event(ref, "Planned", "2 replicas in eu-de")
        timing = LeaseTiming(30, 20, 5)
        # Released by an earlier operator (hub.lease.released): taken at once; an absent one only after 30 s.
        released = LeaseRecord("", 30, None, datetime.now(UTC), 0, None)
        assert adapter.write_lease("gridshift-leader", ns, released)  # a create: the chart grants it
        first = LeaderElector(adapter, "gridshift-leader", ns, "replica-a", timing)
        second = LeaderElector(adapter, "gridshift-leader", ns, "replica-b", timing)
        assert first.try_acquire_or_renew() is True and first.leading()
        assert second.try_acquire_or_renew() is False and not second.leading()
        assert first.try_acquire_or_renew() is True  # a renewal is a compare-and-swap on the current version
        stored = yaml.safe_load(hub.kubectl("get", "idep", ref.name, "-n", workload_ns, "-o", "yaml").stdout)
        assert stored["status"]["conditions"][0]["reason"] == "Starting"
        assert stored["spec"] == example["spec"] | stored["spec"], "spec untouched"
        events = hub.kubectl("get", "events", "-n", workload_ns, "-o", "yaml").stdout
        assert "2 replicas in eu-de" in events
        # ... and the same client is refused what the chart does not grant.
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        with pytest.raises(ApiException) as refused:
            client.CoreV1Api(chart_sa_api_client).list_namespaced_secret(ns)
        assert refused.value.status == 403
    finally:
        hub.kubectl("delete", "namespace", workload_ns, "--wait=false", check=False)


MEMBER_NAMESPACE = "gridshift-member-test"


@pytest.fixture(scope="module")
def member_rbac(hub: Hub, helm: Helm) -> Iterator[str]:
    """The member chart (charts/gridshift-member) applied to the hub API server, standing in for a member cluster."""
    text = helm.render_member("--set", f"workloadNamespaces={{{MEMBER_NAMESPACE}}}")
    hub.kubectl("apply", "-f", "-", input=text)
    yield "system:serviceaccount:gridshift-system:gridshift-member"
    hub.kubectl("delete", "-f", "-", "--ignore-not-found", "--timeout=60s", input=text, check=False)


@pytest.mark.parametrize(
    ("length", "flags", "longest"),
    [
        # The admission policy <name>-replica-pod-labels: 234 makes it 253, the most the API server takes (review:
        # the schema's 253 let it exceed that).
        (234, ["inventory.nodes=true"], 253),
        # Without the policy, the token Secret <name>-token caps it at 247 (found in review: the cap of 234 stood
        # for every release); an RBAC name has no such cap, so <name>-inventory may pass 253.
        (247, ["admissionPolicy.replicaPodLabels.enabled=false", "inventory.nodes=true"], 257),
        (
            253,
            [
                "admissionPolicy.replicaPodLabels.enabled=false",
                "serviceAccount.tokenSecret=false",
                "inventory.nodes=true",
            ],
            263,
        ),
    ],
)
def test_the_longest_member_service_account_name_the_chart_takes_names_objects_the_api_server_takes(
    hub: Hub, helm: Helm, length: int, flags: list[str], longest: int
) -> None:
    name = "a" * length
    sets = [f"serviceAccount.name={name}", "serviceAccount.namespace=default", "serviceAccount.createNamespace=false"]
    text = helm.render_member(*(arg for value in sets + flags for arg in ("--set", value)))
    # The workload namespaces' objects are named <name> and need their namespaces: not what this checks.
    objects = [d for d in yaml.safe_load_all(text) if d and d["kind"] not in ("Namespace", "Role", "RoleBinding")]
    assert max(len(d["metadata"]["name"]) for d in objects) == longest
    proc = hub.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(objects))
    assert proc.stdout.count("(server dry run)") == len(objects), proc.stdout


def test_member_role_allows_actuation_in_the_workload_namespace_only(hub: Hub, member_rbac: str) -> None:
    allowed = [
        (verb, kind, MEMBER_NAMESPACE)
        for verb in ("get", "list", "create", "patch", "delete")
        for kind in ("deployments.apps", "services", "poddisruptionbudgets.policy", "networkpolicies.networking.k8s.io")
    ] + [("list", "pods", MEMBER_NAMESPACE), ("watch", "pods", MEMBER_NAMESPACE)]
    denied = [
        # nothing cluster-wide: no node or pod reads, no namespaces, no cluster-wide lists of workloads
        ("list", "nodes", None),
        ("list", "pods", None),
        ("get", "namespaces", None),
        ("create", "namespaces", None),
        ("patch", "namespaces", MEMBER_NAMESPACE),
        ("list", "deployments.apps", None),
        ("list", "services", None),
        # no reach into other namespaces, no Secrets, no pods of its own making, no RBAC
        ("create", "deployments.apps", "default"),
        ("list", "deployments.apps", "kube-system"),
        ("delete", "services", "kube-system"),
        ("get", "secrets", None),
        ("list", "secrets", MEMBER_NAMESPACE),
        ("get", "pods", MEMBER_NAMESPACE),
        ("create", "pods", MEMBER_NAMESPACE),
        ("patch", "nodes", None),
        ("create", "roles.rbac.authorization.k8s.io", MEMBER_NAMESPACE),
        ("create", "clusterroles.rbac.authorization.k8s.io", None),
    ]
    assert [c for c in allowed if not can_i(hub, member_rbac, *c)] == []
    assert [c for c in denied if can_i(hub, member_rbac, *c)] == []


def test_member_namespace_enforces_pod_security_restricted(hub: Hub, member_rbac: str) -> None:
    """The real apiserver refuses a privileged pod in a workload namespace, and admits gridshift's replica pod."""
    from gridshift.actuation.render import WorkloadTarget, render_deployment
    from gridshift.api import InferenceDeploymentSpec

    privileged = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "escape", "namespace": MEMBER_NAMESPACE},
        "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]},
    }
    refused = hub.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(privileged), check=False)
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr and "restricted" in refused.stderr

    spec = InferenceDeploymentSpec.model_validate(
        {
            "model": {"servedName": "chat", "source": "meta-llama/Meta-Llama-3-8B-Instruct"},
            "replica": {"gpuTypes": ["NVIDIA-H100-80GB-HBM3"]},
            "slo": {"ttftP95Ms": 500, "tpotP95Ms": 50},
        }
    )
    target = WorkloadTarget("llm", "chat", "c1", MEMBER_NAMESPACE, "NVIDIA-H100-80GB-HBM3", 1, 64, "uid-1")
    template = render_deployment(spec, target)["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**template["metadata"], "name": "replica", "namespace": MEMBER_NAMESPACE},
        "spec": template["spec"],
    }
    # Created as the ReplicaSet controller creates replicas: the chart's admission policy refuses gridshift's
    # labels on a pod from anyone else (tests/chart/test_member_admission_policy.py).
    admitted = hub.kubectl(
        "create", "--dry-run=server", "--as=system:serviceaccount:kube-system:replicaset-controller",
        "-f", "-", input=json.dumps(pod), check=False,
    )  # fmt: skip
    assert admitted.returncode == 0, admitted.stderr
    assert "Warning" not in admitted.stderr, admitted.stderr


def test_member_adapter_works_with_the_member_role(hub: Hub, member_rbac: str, tmp_path: Path) -> None:
    """gridshift's member-cluster adapter (server-side apply, list, delete, GPU inventory) with only that Role."""
    from gridshift.actuation.members import KubeMemberCluster, Owner
    from gridshift.actuation.render import WorkloadTarget, render_workload
    from gridshift.api import InferenceDeploymentSpec

    token = hub.kubectl("create", "token", "gridshift-member", "-n", "gridshift-system", check=False).stdout.strip()
    if not token:
        pytest.skip("the API server issues no ServiceAccount tokens")
    config = yaml.safe_load(hub.kubeconfig.read_text())
    config["users"] = [{"name": config["users"][0]["name"], "user": {"token": token}}]
    member = KubeMemberCluster("stand-in", config)
    spec = InferenceDeploymentSpec.model_validate(
        {
            "model": {"servedName": "chat", "source": "meta-llama/Meta-Llama-3-8B-Instruct"},
            "replica": {"gpuTypes": ["NVIDIA-H100-80GB-HBM3"]},
            "slo": {"ttftP95Ms": 500, "tpotP95Ms": 50},
        }
    )
    target = WorkloadTarget("llm", "chat", "stand-in", MEMBER_NAMESPACE, "NVIDIA-H100-80GB-HBM3", 0, 64, "uid-chat")
    member.apply(render_workload(spec, target))
    assert [(w.deployment_namespace, w.deployment_name, w.owner_uid) for w in member.workloads([MEMBER_NAMESPACE])] == [
        ("llm", "chat", "uid-chat")
    ]
    inventory = member.gpu_inventory([MEMBER_NAMESPACE])
    assert not inventory.nodes_visible and inventory.gpus == ()  # no cluster-wide reads: offerings' maxGpus apply
    assert member.delete_deployment_objects(Owner("llm", "chat", "uid-chat"), [MEMBER_NAMESPACE]) == 4
