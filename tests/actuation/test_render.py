"""Rendered workloads carry what scheduling, probes and metric attribution rely on."""

from __future__ import annotations

import argparse
from dataclasses import replace

import yaml

from gridshift.actuation import labels as L
from gridshift.actuation.render import WorkloadTarget, render_workload
from gridshift.api import InferenceDeployment
from gridshift.api.inference_deployment import EnvVar
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
    owner_uid="0f3c1d2e-uid",
)


def test_deployment_requests_gpus_on_the_right_product_with_vllm_args() -> None:
    idep = example()
    deployment, service, pdb, policy = render_workload(idep.spec, TARGET)
    assert service["kind"] == "Service" and pdb["kind"] == "PodDisruptionBudget" and policy["kind"] == "NetworkPolicy"
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
    deployment = render_workload(idep.spec, TARGET)[0]
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= idep.spec.migration.ready_timeout_seconds
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_a_replica_slow_to_answer_health_under_load_is_not_dropped_at_the_kubelets_one_second() -> None:
    # Found in review: no timeoutSeconds, so the kubelet's 1 s default marked a busy replica NotReady at
    # peak load (and liveness could restart it). Liveness is the more tolerant: it restarts the replica.
    from gridshift.actuation.render import APPLIED_FIELDS

    container = render_workload(example().spec, TARGET)[0]["spec"]["template"]["spec"]["containers"][0]
    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    assert container["startupProbe"]["timeoutSeconds"] >= 5 and readiness["timeoutSeconds"] >= 5
    assert liveness["timeoutSeconds"] > readiness["timeoutSeconds"]
    assert liveness["timeoutSeconds"] < liveness["periodSeconds"]
    # Drift repair covers it: a hand-edited timeout is put back.
    fields = APPLIED_FIELDS["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert all(fields[probe]["timeoutSeconds"] is True for probe in ("startupProbe", "readinessProbe", "livenessProbe"))


def test_labels_select_exactly_this_deployment() -> None:
    deployment = render_workload(example().spec, TARGET)[0]
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


def test_every_object_names_its_owner_by_hub_uid() -> None:
    for manifest in render_workload(example().spec, TARGET):
        annotations = manifest["metadata"]["annotations"]
        assert annotations[L.OWNER] == "ml-serving/llama3-8b-chat", manifest["kind"]
        assert annotations[L.OWNER_UID] == "0f3c1d2e-uid", manifest["kind"]


def test_replicas_meet_pod_security_restricted_and_carry_no_token() -> None:
    pod = render_workload(example().spec, TARGET)[0]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
    assert {v["name"] for v in pod["volumes"]} == {"scratch", "shm"}
    assert all(set(v) <= {"name", "emptyDir"} for v in pod["volumes"])  # restricted allows emptyDir, not hostPath


def test_the_network_policy_admits_only_labelled_namespaces_to_this_deployment() -> None:
    deployment, _, _, policy = render_workload(example().spec, TARGET)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert all(pod_labels[k] == v for k, v in selector.items()) and L.DEPLOYMENT in selector
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"gridshift.dev/serving-ingress": "true"}}}]


def test_labels_stay_valid_for_the_longest_names_the_crds_admit() -> None:
    import re

    long = WorkloadTarget(
        deployment_namespace="n" * 63,
        deployment_name="d" * 253,
        cluster="c" * 253,
        workload_namespace="gridshift-workloads",
        gpu_type="NVIDIA-H100-80GB-HBM3",
        replicas=1,
        max_num_seqs=8,
        owner_uid="u",
    )
    valid = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
    for manifest in render_workload(example().spec, long):
        meta = manifest["metadata"]
        assert len(meta["name"]) <= 63, meta["name"]
        for value in meta["labels"].values():
            assert len(value) <= 63 and valid.match(value), value
    other = render_workload(example().spec, replace(long, deployment_name="d" * 252 + "e"))[0]
    first = render_workload(example().spec, long)[0]
    assert other["metadata"]["labels"][L.DEPLOYMENT] != first["metadata"]["labels"][L.DEPLOYMENT]


def test_a_chosen_variant_runs_its_own_model_image_and_args() -> None:
    idep = example()
    document = idep.spec.model_dump(by_alias=True, exclude_none=True)
    document["variants"] = [
        {
            "name": "fp8",
            "profileModel": "meta-llama/Meta-Llama-3-8B-Instruct-FP8",
            "source": "neuralmagic/Meta-Llama-3-8B-Instruct-FP8",
            "image": "vllm/vllm-openai:v0.11.0-fp8",
            "extraArgs": ["--kv-cache-dtype=fp8"],
        }
    ]
    spec = type(idep.spec).model_validate(document)
    plain = render_workload(spec, TARGET)[0]["spec"]["template"]["spec"]["containers"][0]
    fp8 = render_workload(spec, replace(TARGET, variant="fp8"))[0]
    container = fp8["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][container["args"].index("--model") + 1] == "neuralmagic/Meta-Llama-3-8B-Instruct-FP8"
    assert container["image"] == "vllm/vllm-openai:v0.11.0-fp8" and "--kv-cache-dtype=fp8" in container["args"]
    assert plain["args"][plain["args"].index("--model") + 1] == idep.spec.model.source
    assert "--kv-cache-dtype=fp8" not in plain["args"] and plain["image"] == idep.spec.engine.image
    # A variant's extraArgs may not take over a flag the operator owns.
    document["variants"][0]["extraArgs"] = ["--model=other"]
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError, match="extraArgs must not set a flag"):
        type(idep.spec).model_validate(document)


def test_a_users_hf_home_takes_the_operators_place_and_no_variable_is_listed_twice() -> None:
    idep = example()
    engine = idep.spec.engine.model_copy(update={"env": [EnvVar(name="HF_HOME", value="/models/cache")]})
    spec = idep.spec.model_copy(update={"engine": engine})
    container = render_workload(spec, TARGET)[0]["spec"]["template"]["spec"]["containers"][0]
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names)), names  # server-side apply refuses a name listed twice
    assert {e["name"]: e["value"] for e in container["env"]}["HF_HOME"] == "/models/cache"
    assert names[:2] == ["HOME", "HF_HOME"]


def test_a_replica_names_its_user_and_inductor_cache_for_an_image_without_a_passwd_entry() -> None:
    # Found in review: pods run as UID 1000 with only HOME and HF_HOME set; torch's inductor cache asked
    # getpass.getuser(), which raises KeyError 'getpwuid(): uid not found: 1000' on images without that entry.
    pod = render_workload(example().spec, TARGET)[0]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["USER"] and env["LOGNAME"] == env["USER"]  # getpass.getuser() reads LOGNAME, then USER
    writable = {m["mountPath"] for m in container["volumeMounts"] if m["name"] == "scratch"}
    assert any(env["TORCHINDUCTOR_CACHE_DIR"].startswith(f"{path}/") for path in writable), env
    assert {v["name"]: v for v in pod["volumes"]}["scratch"] == {"name": "scratch", "emptyDir": {}}
    # One of the user's own of the same name takes the operator's place, as HOME and HF_HOME do.
    engine = example().spec.engine.model_copy(
        update={"env": [EnvVar(name="USER", value="svc"), EnvVar(name="TORCHINDUCTOR_CACHE_DIR", value="/c")]}
    )
    spec = example().spec.model_copy(update={"engine": engine})
    env_list = render_workload(spec, TARGET)[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    names = [e["name"] for e in env_list]
    assert len(names) == len(set(names)), names
    mine = {e["name"]: e["value"] for e in env_list}
    assert (mine["USER"], mine["TORCHINDUCTOR_CACHE_DIR"], mine["LOGNAME"]) == ("svc", "/c", env["LOGNAME"])


def _vllm_parser() -> argparse.ArgumentParser:
    """The owned options as vLLM declares them, parsed as its FlexibleArgumentParser does (allow_abbrev)."""
    parser = argparse.ArgumentParser(allow_abbrev=True)
    for flag in ("--model", "--revision", "--port", "--max-num-seqs", "--max-model-len", "--kv-cache-dtype"):
        parser.add_argument(flag)
    parser.add_argument("--tensor-parallel-size", "-tp")
    parser.add_argument("--served-model-name", nargs="+")
    parser.add_argument("--enable-prefix-caching", action="store_true")
    return parser


def test_the_operators_flags_come_last_and_win_over_any_extra_arg() -> None:
    idep = example()
    # What admission refuses (the model is built without validation): should one ever pass, it must not win.
    sneaky = ["--por=9001", "--max-num-seq=4096", "--served-model=victim-model", "--tensor-parallel=8", "--model=x"]
    engine = idep.spec.engine.model_copy(update={"extra_args": [*idep.spec.engine.extra_args, *sneaky]})
    spec = idep.spec.model_copy(update={"engine": engine})
    args = render_workload(spec, TARGET)[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    parsed = _vllm_parser().parse_args(args)
    assert parsed.port == str(idep.spec.engine.port) and parsed.max_num_seqs == "96"
    assert parsed.served_model_name == [idep.spec.model.served_name] and parsed.tensor_parallel_size == "1"
    assert parsed.model == idep.spec.model.source and parsed.enable_prefix_caching
    assert args[: len(engine.extra_args)] == engine.extra_args


def _with_variant(**variant: str) -> tuple[InferenceDeployment, list[str]]:
    idep = example()
    document = idep.spec.model_dump(by_alias=True, exclude_none=True)
    document["model"]["revision"] = "0e9e39f249a16976918f6564b8830bc894c89659"  # a pinned commit of the base model
    document["variants"] = [{"name": "fp8", "profileModel": "m-fp8", **variant}]
    spec = type(idep.spec).model_validate(document)
    args = render_workload(spec, replace(TARGET, variant="fp8"))[0]["spec"]["template"]["spec"]["containers"][0]
    return idep.model_copy(update={"spec": spec}), args["args"]


def test_a_variant_with_its_own_weights_never_gets_the_base_models_revision() -> None:
    _, own = _with_variant(source="neuralmagic/Meta-Llama-3-8B-Instruct-FP8")
    assert "--revision" not in own  # the source's default branch
    _, pinned = _with_variant(source="neuralmagic/Meta-Llama-3-8B-Instruct-FP8", revision="v1.2")
    assert _vllm_parser().parse_args(pinned).revision == "v1.2"
    idep, same = _with_variant(extraArgs=["--kv-cache-dtype=fp8"])  # the base model's weights, quantised at load
    assert _vllm_parser().parse_args(same).revision == idep.spec.model.revision


def test_a_secret_reference_is_rendered_only_for_a_workload_namespace_of_the_tenants_own() -> None:
    idep = example()
    token = EnvVar.model_validate({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "t"}}})
    spec = idep.spec.model_copy(update={"engine": idep.spec.engine.model_copy(update={"env": [token]})})

    def env(target: WorkloadTarget) -> list[dict[str, object]]:
        return list(render_workload(spec, target)[0]["spec"]["template"]["spec"]["containers"][0]["env"])

    assert not any(e["name"] == "HF_TOKEN" for e in env(TARGET))  # the default: a shared namespace
    own = replace(TARGET, workload_namespace="gridshift-ml-serving", secret_references=True)
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "t"}}} in env(own)
