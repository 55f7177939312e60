"""Rendered workloads carry what scheduling, probes and metric attribution rely on."""

from __future__ import annotations

import yaml

from gridshift.actuation import labels as L
from gridshift.actuation.render import WorkloadTarget, render_workload
from gridshift.api import InferenceDeployment
from tests.conftest import REPO_ROOT


def example() -> InferenceDeployment:
    doc = yaml.safe_load((REPO_ROOT / "examples" / "inferencedeployment-llama3-8b.yaml").read_text())
    return InferenceDeployment.model_validate(doc)


TARGET = WorkloadTarget(
    deployment_namespace="ml-serving",
    deployment_name="llama3-8b-chat",
    cluster="eu-fr",
    workload_namespace="gridshift-workloads",
    gpu_type="NVIDIA-H100-80GB-HBM3",
    replicas=3,
    max_num_seqs=96,
)


def test_deployment_requests_gpus_on_the_right_product_with_vllm_args() -> None:
    idep = example()
    ns, deployment, service, pdb = render_workload(idep.spec, TARGET)
    assert ns["kind"] == "Namespace" and service["kind"] == "Service" and pdb["kind"] == "PodDisruptionBudget"
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert deployment["spec"]["replicas"] == 3
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    args = container["args"]
    assert args[args.index("--max-num-seqs") + 1] == "96"
    assert args[args.index("--served-model-name") + 1] == "llama3-8b-chat"
    assert args[args.index("--tensor-parallel-size") + 1] == "1"
    assert "--enable-prefix-caching" in args
    assert container["image"] == idep.spec.engine.image


def test_startup_probe_outlasts_the_ready_timeout() -> None:
    idep = example()
    deployment = render_workload(idep.spec, TARGET)[1]
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= idep.spec.migration.ready_timeout_seconds
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_labels_select_exactly_this_deployment() -> None:
    deployment = render_workload(example().spec, TARGET)[1]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels[L.MANAGED_BY] == "gridshift"
    assert labels[L.DEPLOYMENT] == "ml-serving.llama3-8b-chat" and labels[L.DEPLOYMENT_NAMESPACE] == "ml-serving"
    assert labels[L.CLUSTER] == "eu-fr"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert all(labels[k] == v for k, v in selector.items())


def test_workload_names_are_short_valid_and_distinct() -> None:
    a = L.workload_name("ns", "x" * 200, "NVIDIA-H100-80GB-HBM3")
    b = L.workload_name("ns", "x" * 200, "NVIDIA-L40S")
    c = L.workload_name("other", "x" * 200, "NVIDIA-H100-80GB-HBM3")
    assert len({a, b, c}) == 3
    assert all(len(n) <= 63 and n[0].isalpha() for n in (a, b, c))
    assert L.workload_name("ns", "9lives", "g")[0].isalpha()
