"""The chart's admission policies: kubectl warnings, never refusals, about an unpinned engine image and
about a RegionalCluster feed settings block that the feed's type does not name.

Rendered with the Go-built helm, then installed on a real kube-apiserver 1.36 (the hub of
tests/chart), where `kubectl apply` must print the warning for `:latest`, a missing tag, or (with
requireDigest) a tag without digest, and print nothing for an image pinned by digest; and print the
same words as `gridshift.api.advisories` (what `gridshift validate` prints).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from gridshift.api.advisories import admission_warnings, unpinned_image
from gridshift.api.carbon import CarbonFeedType
from gridshift.api.regional_cluster import PriceFeedType
from gridshift.api.validation import validate_object
from gridshift.cli.main import main

from .conftest import Helm, Hub, Release

NOT_PINNED = "is not pinned: with no tag or :latest"
TAG_ONLY = "is pinned by tag only"
IGNORED = "is set but ignored: type is"
DIGEST = "sha256:" + "0123456789abcdef" * 4


def policies(
    objects: list[dict[str, Any]], suffix: str = "-engine-image-pinned"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The policy and binding whose name ends with `suffix` (one of each, or none)."""
    named = [o for o in objects if o["metadata"]["name"].endswith(suffix)]
    return (
        [o for o in named if o["kind"] == "ValidatingAdmissionPolicy"],
        [o for o in named if o["kind"] == "ValidatingAdmissionPolicyBinding"],
    )


def test_the_policies_warn_and_never_deny(rendered: list[dict[str, Any]]) -> None:
    every = [o for o in rendered if o["kind"].startswith("ValidatingAdmissionPolicy")]
    assert len(every) == 4
    for suffix, resource, count in (
        ("-engine-image-pinned", "inferencedeployments", 2),
        ("-feed-settings", "regionalclusters", len(PriceFeedType) + len(CarbonFeedType)),
    ):
        (policy,), (binding,) = policies(rendered, suffix)
        assert binding["spec"]["validationActions"] == ["Warn"]
        assert binding["spec"]["policyName"] == policy["metadata"]["name"]
        assert policy["spec"]["failurePolicy"] == "Ignore"
        (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
        assert (rule["apiGroups"], rule["resources"]) == (["gridshift.dev"], [resource])
        assert len(policy["spec"]["validations"]) == count


def test_the_feed_policy_checks_every_settings_block_of_the_api(rendered: list[dict[str, Any]]) -> None:
    (policy,), _ = policies(rendered, "-feed-settings")
    checked = {
        v["expression"].split("||")[1].strip().removeprefix("!has(object.spec.").rstrip(")")
        for v in policy["spec"]["validations"]
    }
    assert checked == {f"priceFeed.{t.value}" for t in PriceFeedType} | {
        f"carbonFeed.{t.value}" for t in CarbonFeedType
    }


def test_values_turn_each_policy_or_the_digest_rule_off(helm: Helm) -> None:
    off = helm.render("--set", "admissionPolicy.engineImage.warnUnpinned=false")
    assert policies(off) == ([], [])
    assert policies(off, "-feed-settings") != ([], [])
    off = helm.render("--set", "admissionPolicy.feedSettings.warnIgnored=false")
    assert policies(off, "-feed-settings") == ([], [])
    assert policies(off) != ([], [])
    (policy,), _ = policies(helm.render("--set", "admissionPolicy.engineImage.requireDigest=false"))
    assert len(policy["spec"]["validations"]) == 1


def idep(namespace: str, name: str, image: str | None) -> str:
    engine = {"engine": {"image": image}} if image is not None else {}
    return yaml.safe_dump(
        {
            "apiVersion": "gridshift.dev/v1alpha1",
            "kind": "InferenceDeployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "model": {"servedName": "m", "source": "org/m"},
                "replica": {"gpuTypes": ["NVIDIA-H100-80GB-HBM3"]},
                "slo": {"ttftP95Ms": 500, "tpotP95Ms": 50},
                **engine,
            },
        }
    )


def apply(hub: Hub, manifest: str, *extra: str) -> str:
    """kubectl apply; the warnings it printed (it must succeed: a warning never refuses)."""
    proc = hub.kubectl("apply", *extra, "-f", "-", input=manifest)
    return "\n".join(line for line in proc.stderr.splitlines() if line.startswith("Warning:"))


def first_warning(hub: Hub, manifest: str, words: str) -> str:
    """The warnings of a server-side dry run of `manifest`, once they hold `words`: the apiserver loads a new
    policy and binding asynchronously (at most a minute)."""
    deadline = time.monotonic() + 60
    warnings = ""
    while words not in warnings and time.monotonic() < deadline:
        warnings = apply(hub, manifest, "--dry-run=server")
        time.sleep(1)
    return warnings


@pytest.mark.cluster
def test_kubectl_apply_warns_about_an_unpinned_engine_image(hub: Hub, installed_chart: Release) -> None:
    ns = installed_chart.namespace
    warnings = first_warning(hub, idep(ns, "latest", "vllm/vllm-openai:latest"), NOT_PINNED)
    assert f"spec.engine.image vllm/vllm-openai:latest {NOT_PINNED}" in warnings, warnings

    # A real apply (not a dry run) is warned and accepted.
    warnings = apply(hub, idep(ns, "no-tag", "registry.example:5000/vllm/vllm-openai"))
    try:
        assert f"registry.example:5000/vllm/vllm-openai {NOT_PINNED}" in warnings, warnings
        assert hub.kubectl("get", "inferencedeployment", "no-tag", "-n", ns).returncode == 0
    finally:
        hub.kubectl("delete", "inferencedeployment", "no-tag", "-n", ns, "--wait=false", check=False)

    tag_only = apply(hub, idep(ns, "tag", "vllm/vllm-openai:v0.11.0"), "--dry-run=server")
    assert TAG_ONLY in tag_only and NOT_PINNED not in tag_only, tag_only
    defaulted = apply(hub, idep(ns, "default-image", None), "--dry-run=server")
    assert f"vllm/vllm-openai:v0.11.0 {TAG_ONLY}" in defaulted, defaulted  # checked after defaulting
    for pinned in (f"vllm/vllm-openai@{DIGEST}", f"vllm/vllm-openai:v0.11.0@{DIGEST}"):
        assert apply(hub, idep(ns, "pinned", pinned), "--dry-run=server") == "", pinned


def regional_cluster(name: str, price_feed: dict[str, Any], carbon_feed: dict[str, Any] | None) -> dict[str, Any]:
    carbon = {} if carbon_feed is None else {"carbonFeed": carbon_feed}
    return {
        "apiVersion": "gridshift.dev/v1alpha1",
        "kind": "RegionalCluster",
        "metadata": {"name": name},
        "spec": {
            "region": "eu-de",
            "kubeconfigSecretRef": {"name": "kubeconfig-eu-de", "namespace": "gridshift-system", "key": "kubeconfig"},
            "offerings": [{"gpuType": "NVIDIA-H100-80GB-HBM3", "maxGpus": 8}],
            "priceFeed": price_feed,
            **carbon,
        },
    }


SECRET = {"name": "s", "namespace": "gridshift-system", "key": "k"}
ENTSOE = {"areaEic": "10Y1001A1001A82H", "tokenSecretRef": SECRET}
WATTTIME = {"region": "CAISO_NORTH", "username": "u", "passwordSecretRef": SECRET}
LEFT_BEHIND = regional_cluster(
    "left-behind",
    {"type": "static", "static": {"price": 50}, "entsoe": ENTSOE},
    {"type": "static", "basis": "direct", "static": {"gPerKwh": 300}, "watttime": WATTTIME},
)
CLEAN = regional_cluster("clean", {"type": "entsoe", "entsoe": ENTSOE}, None)


def test_validate_prints_the_policies_warnings_and_still_passes(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rc.yaml"
    path.write_text(yaml.safe_dump_all([LEFT_BEHIND, CLEAN]))
    assert main(["validate", str(path)]) == 0
    err = capsys.readouterr().err
    assert f"RegionalCluster left-behind: spec.priceFeed.entsoe {IGNORED} static" in err, err
    assert f"RegionalCluster left-behind: spec.carbonFeed.watttime {IGNORED} static" in err, err
    assert "RegionalCluster clean" not in err, err
    assert admission_warnings(validate_object(CLEAN)) == []


def messages(warnings: str) -> set[str]:
    """The policies' own words in kubectl's warning lines ("Warning: Validation failed for
    ValidatingAdmissionPolicy 'p' with binding 'b': <message>")."""
    return {line.split("': ", 1)[1] for line in warnings.splitlines()}


@pytest.mark.cluster
def test_kubectl_warns_as_gridshift_validate_does(hub: Hub, installed_chart: Release) -> None:
    """The chart's CEL and `gridshift.api.advisories` say the same words about the same objects."""
    ns = installed_chart.namespace
    warnings = first_warning(hub, yaml.safe_dump(LEFT_BEHIND), IGNORED)
    expected = set(admission_warnings(validate_object(LEFT_BEHIND)))
    assert len(expected) == 2 and messages(warnings) == expected, warnings
    assert apply(hub, yaml.safe_dump(CLEAN), "--dry-run=server") == ""

    # The case that made this a warning rather than a refusal: a merge patch switching type leaves the old
    # block behind; it is stored, and kubectl says the block is ignored.
    apply(hub, yaml.safe_dump(CLEAN))
    try:
        patch = hub.kubectl(
            "patch", "regionalcluster", "clean", "--type=merge",
            "-p", '{"spec":{"priceFeed":{"type":"static","static":{"price":40}}}}',
        )  # fmt: skip
        assert messages(patch.stderr) == {f"spec.priceFeed.entsoe {IGNORED} static"}, patch.stderr
    finally:
        hub.kubectl("delete", "regionalcluster", "clean", "--wait=false", check=False)

    for image in ("vllm/vllm-openai:latest", "registry.example:5000/vllm/vllm-openai", "vllm/vllm-openai:v0.11.0"):
        told = apply(hub, idep(ns, "twin", image), "--dry-run=server")
        assert messages(told) == {unpinned_image(image)}, (image, told)
    assert unpinned_image(f"vllm/vllm-openai:v0.11.0@{DIGEST}") is None
