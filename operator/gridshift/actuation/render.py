"""Renders the member-cluster objects that serve one InferenceDeployment on one GPU type.

Pure functions: API model in, manifests (plain dicts) out. Applied with server-side apply under
the field manager `gridshift`, so a re-render of unchanged inputs is a no-op on the apiserver.

Every object carries the owner annotations (hub namespace/name and UID), without which the
operator treats an object as foreign. Replica pods meet Pod Security Admission's `restricted`
profile (non-root, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp) and
mount no service-account token: vLLM needs no Kubernetes API. A NetworkPolicy admits traffic to the
replicas only from namespaces labelled SERVING_INGRESS_LABEL (the gateway, Prometheus), so tenants
sharing a cluster cannot reach each other's models.

The workload namespace is not rendered: the member cluster's administrator creates it (with its
Pod Security labels and gridshift's namespaced Role, charts/gridshift-member), so gridshift
needs no cluster-wide rights there.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gridshift.actuation import labels as L
from gridshift.api.inference_deployment import InferenceDeploymentSpec, ModelVariant, sets_flag
from gridshift.api.labels import bounded_label_value

Manifest = dict[str, Any]

# vLLM's startup (download, load, CUDA graphs) can take many minutes; the startup probe must
# outlast it or the kubelet restarts a healthy, still-loading replica.
_STARTUP_PERIOD_SECONDS = 10
_PROBE_TIMEOUT_SECONDS = 5
"""Seconds a /health answer may take before the probe fails. The kubelet's default (1 s) marked a replica
busy with a full batch NotReady exactly at peak load (vLLM answers /health on the loop that streams
tokens; public reports: scaleapi/llm-engine#255, llm-d/llm-d-benchmark#1734), so gridshift counted less
capacity than ran and rolled back moves (found in review)."""
_LIVENESS_TIMEOUT_SECONDS = 10
"""Liveness tolerates more than readiness: a slow answer costs a Ready replica its traffic for a while,
a failed liveness restarts it (minutes of cold start)."""
_GPU_TOLERATION = {"key": L.GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
REPLICA_UID = 1000
"""The non-root user replicas run as (vLLM's images default to root, which `restricted` refuses)."""
SCRATCH_DIR = "/tmp"
"""Writable scratch (HOME, Hugging Face and torch caches): an emptyDir, the image's root stays untouched."""
REPLICA_USER = "vllm"
"""USER and LOGNAME of replicas. REPLICA_UID has no passwd entry in most images, and torch's inductor
cache (and whatever else calls getpass.getuser()) raised KeyError 'getpwuid(): uid not found: 1000'
(pytorch/pytorch#140765, HabanaAI/vllm-fork#929); getpass.getuser() reads LOGNAME and USER first."""
SERVING_INGRESS_LABEL = "gridshift.dev/serving-ingress"
"""Namespaces labelled `<this>=true` may reach replicas (NetworkPolicy): the gateway's, Prometheus'."""


@dataclass(frozen=True)
class WorkloadTarget:
    """What to run for one deployment in one cluster on one GPU type."""

    deployment_namespace: str
    deployment_name: str
    cluster: str
    workload_namespace: str
    gpu_type: str
    replicas: int
    max_num_seqs: int
    owner_uid: str = ""
    """metadata.uid of the InferenceDeployment on the hub (owner annotation)."""
    variant: str = ""
    """The spec.variants build the plan chose here (its model, image and extra args); "": spec.model."""
    max_model_len: int | None = None
    """vLLM --max-model-len where the model's own maximum does not fit this GPU type's KV cache
    (planner.kvmemory.KvMemory.max_model_len); None: vLLM's default."""
    live_engine: tuple[str, tuple[str, ...]] | None = None
    """The image and args of a live vLLM container, rendered as they are in place of `variant`'s and
    `max_num_seqs`, and without the VARIANT annotation (so it is told again next time): an earlier release's
    Deployment whose build its weights, image and args do not tell apart (service.actuate.live_variant)."""
    generation: int | None = None
    """metadata.generation of the InferenceDeployment rendered (GENERATION annotation; None: not written)."""
    max_num_seqs_since: str | None = None
    """When `max_num_seqs` was first rendered (MAX_NUM_SEQS_SINCE annotation, RFC 3339; None: not written):
    the live Deployment's stamp while it keeps its value, the cycle's time for a new one (service.actuate)."""
    secret_references: bool = False
    """Whether the spec's valueFrom Secret references are rendered: only into a workload namespace of the
    tenant's own, since any replica in a shared one could read any Secret there (planner.problem keeps such
    a deployment out of those clusters; this keeps replicas placed before an edit from gaining one)."""


def workload_labels(target: WorkloadTarget) -> dict[str, str]:
    return {
        **_deployment_selector(target),
        L.DEPLOYMENT_NAMESPACE: target.deployment_namespace,
        L.GPU_TYPE: bounded_label_value(target.gpu_type),
        L.CLUSTER: bounded_label_value(target.cluster),
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/instance": bounded_label_value(target.deployment_name),
    }


def _metadata(name: str, target: WorkloadTarget, labels: dict[str, str], **annotations: str) -> Manifest:
    owner = L.owner_annotations(target.deployment_namespace, target.deployment_name, target.owner_uid)
    return {
        "name": name,
        "namespace": target.workload_namespace,
        "labels": labels,
        "annotations": {**annotations, **owner},
    }


def _deployment_selector(target: WorkloadTarget) -> dict[str, str]:
    """Labels every replica of the deployment carries in this cluster, whatever its GPU type."""
    return L.deployment_selector(target.deployment_namespace, target.deployment_name)


def _deployment_wide_metadata(target: WorkloadTarget, suffix: str) -> Manifest:
    """Metadata of an object that covers all of the deployment's replicas in this cluster (Service, NetworkPolicy)."""
    name = L.workload_name(target.deployment_namespace, target.deployment_name, suffix)
    return _metadata(name, target, _deployment_selector(target))


def _pod_selector(target: WorkloadTarget) -> dict[str, str]:
    return {
        **_deployment_selector(target),
        L.GPU_TYPE: bounded_label_value(target.gpu_type),
    }


def _variant(spec: InferenceDeploymentSpec, name: str) -> ModelVariant | None:
    return next((v for v in spec.variants if v.name == name), None) if name else None


def _env(spec: InferenceDeploymentSpec, secret_references: bool) -> list[dict[str, Any]]:
    """HOME, HF_HOME and TORCHINDUCTOR_CACHE_DIR in the scratch volume, USER and LOGNAME (REPLICA_USER),
    then the spec's variables; one of the spec's named as one of these takes the operator's place (listed
    twice, the apply was refused). Found in review: with only HOME and HF_HOME, torch's inductor cache
    asked getpass.getuser() for a cache directory, which fails for a UID without a passwd entry; the
    directory is set outright and the user named. A valueFrom is passed on
    as a reference (the kubelet reads the Secret, gridshift never does), and left out unless
    `secret_references` (WorkloadTarget): found in review, a deployment placed in a shared workload
    namespace and then edited to name a Secret had the reference rendered there, where its replicas,
    running the tenant's own image, could read another tenant's Secret."""
    env: dict[str, dict[str, Any]] = {
        "HOME": {"name": "HOME", "value": SCRATCH_DIR},
        "HF_HOME": {"name": "HF_HOME", "value": f"{SCRATCH_DIR}/huggingface"},
        "TORCHINDUCTOR_CACHE_DIR": {"name": "TORCHINDUCTOR_CACHE_DIR", "value": f"{SCRATCH_DIR}/torchinductor"},
        "USER": {"name": "USER", "value": REPLICA_USER},
        "LOGNAME": {"name": "LOGNAME", "value": REPLICA_USER},
    }
    for e in spec.engine.env:
        if e.value_from is None:
            env[e.name] = {"name": e.name, "value": e.value}
        elif secret_references:
            ref = e.value_from.secret_key_ref
            env[e.name] = {"name": e.name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
    return list(env.values())


def vllm_args(
    spec: InferenceDeploymentSpec, max_num_seqs: int, variant: str = "", max_model_len: int | None = None
) -> list[str]:
    """The user's extra args first, the operator's flags last: argparse keeps the last value, so neither
    an abbreviation of an owned flag nor a --config file can override what the operator relies on (the
    port it probes, the batch size it planned, the GPUs the pod requests). Admission refuses owned flags
    and their abbreviations in extraArgs besides.

    `max_model_len` (a GPU type whose KV cache cannot hold the model's longest sequence) is left out where
    the user's args set --max-model-len themselves: it is theirs to choose, and their replicas keep the
    rendering they had."""
    build = _variant(spec, variant)
    source = model_source(spec, variant)
    extra = [*spec.engine.extra_args, *(build.extra_args if build is not None else ())]
    own_length = max_model_len is None or sets_flag(extra, "--max-model-len")
    return [
        *extra,
        *([] if own_length else ["--max-model-len", str(max_model_len)]),
        "--model",
        source,
        *(["--revision", revision] if (revision := _revision(spec, build, source)) else []),
        "--served-model-name",
        spec.model.served_name,
        "--tensor-parallel-size",
        str(spec.replica.gpus_per_replica),
        "--max-num-seqs",
        str(max_num_seqs),
        "--port",
        str(spec.engine.port),
    ]


def model_source(spec: InferenceDeploymentSpec, variant: str = "") -> str:
    """The weights a replica loads: the variant's own source, else spec.model.source."""
    build = _variant(spec, variant)
    return build.source if build is not None and build.source else spec.model.source


def engine_image(spec: InferenceDeploymentSpec, variant: str = "") -> str:
    """The image a replica runs: the variant's own, else spec.engine.image."""
    build = _variant(spec, variant)
    return build.image if build is not None and build.image else spec.engine.image


def _revision(spec: InferenceDeploymentSpec, build: ModelVariant | None, source: str) -> str | None:
    """The variant's own revision; else spec.model.revision for the model's own source. A variant with
    weights of its own gets none (vLLM's default branch): the model's revision, often a pinned commit,
    names a commit of another repository, which vLLM would fail to load."""
    if build is not None and build.revision:
        return build.revision
    return spec.model.revision if source == spec.model.source else None


def template_hash(template: Manifest) -> str:
    """Stable digest of a pod template: a changed spec (image, args, resources) changes it."""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]


def render_deployment(spec: InferenceDeploymentSpec, target: WorkloadTarget) -> Manifest:
    name = L.workload_name(target.deployment_namespace, target.deployment_name, target.gpu_type)
    pod_labels = workload_labels(target)
    gpus = str(spec.replica.gpus_per_replica)
    startup_failures = math.ceil(spec.migration.ready_timeout_seconds / _STARTUP_PERIOD_SECONDS)
    container = {
        "name": "vllm",
        "image": target.live_engine[0] if target.live_engine else engine_image(spec, target.variant),
        "args": list(target.live_engine[1])
        if target.live_engine
        else vllm_args(spec, target.max_num_seqs, target.variant, target.max_model_len),
        "env": _env(spec, target.secret_references),
        "ports": [{"name": "http", "containerPort": spec.engine.port}],
        "resources": {
            "requests": {"cpu": spec.replica.cpu, "memory": spec.replica.memory, L.GPU_RESOURCE: gpus},
            "limits": {"memory": spec.replica.memory, L.GPU_RESOURCE: gpus},
        },
        **_probes(startup_failures),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH_DIR}, {"name": "shm", "mountPath": "/dev/shm"}],
    }
    template = {
        "metadata": {
            "labels": pod_labels,
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(spec.engine.port),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": {
            "nodeSelector": {L.GPU_PRODUCT_NODE_LABEL: target.gpu_type},
            "tolerations": [_GPU_TOLERATION],
            "terminationGracePeriodSeconds": 60,
            # vLLM calls no Kubernetes API: no token to steal from a compromised replica.
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": REPLICA_UID,
                "runAsGroup": REPLICA_UID,
                "fsGroup": REPLICA_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "volumes": [
                {"name": "scratch", "emptyDir": {}},
                # Tensor-parallel workers exchange tensors through shared memory.
                {"name": "shm", "emptyDir": {"medium": "Memory"}},
            ],
            "containers": [container],
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        # The variant is written down (not only its model and image): read back by `members.state_from_deployment`,
        # it renders a replica the plan has no option for as it runs (actuate), whatever its build has in common
        # with others.
        "metadata": _metadata(name, target, pod_labels, **_deployment_annotations(target, template)),
        "spec": {
            "replicas": target.replicas,
            "selector": {"matchLabels": _pod_selector(target)},
            # A new replica must be Ready before an old one goes: serving capacity never dips.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": template,
        },
    }


def _deployment_annotations(target: WorkloadTarget, template: Manifest) -> dict[str, str]:
    """The Deployment's own annotations. The generation is on the Deployment's metadata, not the pod template's:
    an edit that leaves the pod template as it was is a metadata apply, no rollout."""
    annotations = {L.SPEC_HASH: template_hash(template)}
    if target.live_engine is None:
        annotations[L.VARIANT] = target.variant
    if target.generation is not None:
        annotations[L.GENERATION] = str(target.generation)
    if target.max_num_seqs_since is not None:
        # Not in applied_digest's fields: it changes only with --max-num-seqs (the args tell a rollout already),
        # and a stamp edited by hand is not worth a write; one removed only lets the next cap change through.
        annotations[L.MAX_NUM_SEQS_SINCE] = target.max_num_seqs_since
    return annotations


def _probes(startup_failures: int) -> dict[str, Any]:
    """vLLM's /health as startup, readiness and liveness probe."""

    def probe(period: int, timeout: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": period,
            "timeoutSeconds": timeout,
            "failureThreshold": failures,
        }

    return {
        "startupProbe": probe(_STARTUP_PERIOD_SECONDS, _PROBE_TIMEOUT_SECONDS, startup_failures),
        "readinessProbe": probe(5, _PROBE_TIMEOUT_SECONDS, 3),
        "livenessProbe": probe(15, _LIVENESS_TIMEOUT_SECONDS, 4),
    }


def render_service(spec: InferenceDeploymentSpec, target: WorkloadTarget) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _deployment_wide_metadata(target, "svc"),
        "spec": {
            "selector": _deployment_selector(target),
            "ports": [{"name": "http", "port": spec.engine.port, "targetPort": "http"}],
        },
    }


def render_pdb(target: WorkloadTarget) -> Manifest:
    name = L.workload_name(target.deployment_namespace, target.deployment_name, target.gpu_type)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(name, target, workload_labels(target)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _pod_selector(target)}},
    }


def render_network_policy(spec: InferenceDeploymentSpec, target: WorkloadTarget) -> Manifest:
    """Ingress to the deployment's replicas only from namespaces labelled SERVING_INGRESS_LABEL=true."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _deployment_wide_metadata(target, "ingress"),
        "spec": {
            "podSelector": {"matchLabels": _deployment_selector(target)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"namespaceSelector": {"matchLabels": {SERVING_INGRESS_LABEL: "true"}}}],
                    "ports": [{"protocol": "TCP", "port": spec.engine.port}],
                }
            ],
        },
    }


def render_workload(spec: InferenceDeploymentSpec, target: WorkloadTarget) -> list[Manifest]:
    """Everything one (deployment, cluster, GPU type) needs, in apply order."""
    return [
        render_deployment(spec, target),
        render_service(spec, target),
        render_pdb(target),
        render_network_policy(spec, target),
    ]


# What of each kind gridshift sets: an object read back from the apiserver is compared on these fields
# only (`applied_digest`), so the fields the apiserver defaults (imagePullPolicy, clusterIP, ...) and
# those other writers add (labels, annotations) never count as drift. A whole-value leaf (True) is one
# server-side apply replaces whole (atomic lists: args, tolerations, a policy's rules); maps are read
# key by key; a list of objects item by item. `replicas` is left out: it is compared on its own.
_QUANTITIES = "quantities"
_OUR_LABELS: dict[str, Any] = dict.fromkeys(
    [
        L.MANAGED_BY,
        L.DEPLOYMENT,
        L.DEPLOYMENT_NAMESPACE,
        L.GPU_TYPE,
        L.CLUSTER,
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
    ],
    True,
)
_METADATA = {
    "labels": _OUR_LABELS,
    "annotations": dict.fromkeys((L.OWNER, L.OWNER_UID, L.SPEC_HASH, L.VARIANT, L.GENERATION), True),
}
_PROBE = {
    "httpGet": {"path": True, "port": True},
    "periodSeconds": True,
    "timeoutSeconds": True,
    "failureThreshold": True,
}
_CONTAINER = {
    "name": True,
    "image": True,
    "args": True,
    "env": [{"name": True, "value": True, "valueFrom": True}],
    "ports": [{"name": True, "containerPort": True}],
    "resources": {"requests": _QUANTITIES, "limits": _QUANTITIES},
    "startupProbe": _PROBE,
    "readinessProbe": _PROBE,
    "livenessProbe": _PROBE,
    "securityContext": {
        "allowPrivilegeEscalation": True,
        "capabilities": True,
        "runAsNonRoot": True,
        "seccompProfile": True,
    },
    "volumeMounts": [{"name": True, "mountPath": True}],
}
_POD = {
    "nodeSelector": {L.GPU_PRODUCT_NODE_LABEL: True},
    "tolerations": True,
    "terminationGracePeriodSeconds": True,
    "automountServiceAccountToken": True,
    "securityContext": dict.fromkeys(("runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "seccompProfile"), True),
    "volumes": [{"name": True, "emptyDir": {"medium": True}}],
    "containers": [_CONTAINER],
}
_SELECTOR = {"matchLabels": _OUR_LABELS}
APPLIED_FIELDS: dict[str, dict[str, Any]] = {
    "Deployment": {
        "metadata": _METADATA,
        "spec": {
            "selector": _SELECTOR,
            "strategy": True,
            "template": {
                "metadata": {
                    "labels": _OUR_LABELS,
                    "annotations": dict.fromkeys(
                        ("prometheus.io/scrape", "prometheus.io/port", "prometheus.io/path"), True
                    ),
                },
                "spec": _POD,
            },
        },
    },
    "Service": {
        "metadata": _METADATA,
        "spec": {"selector": _OUR_LABELS, "ports": [{"name": True, "port": True, "targetPort": True}]},
    },
    "PodDisruptionBudget": {"metadata": _METADATA, "spec": {"maxUnavailable": True, "selector": _SELECTOR}},
    "NetworkPolicy": {
        "metadata": _METADATA,
        "spec": {"podSelector": _SELECTOR, "policyTypes": True, "ingress": True},
    },
}


def applied_digest(obj: Mapping[str, Any], kind: str = "") -> str:
    """Digest of the fields gridshift sets on an object of a managed kind (APPLIED_FIELDS), the same for
    what is rendered and for what the apiserver gives back while nobody changed those fields. `kind`:
    for an item of a list, which does not say it."""
    projected = _project(obj, APPLIED_FIELDS[kind or str(obj.get("kind"))])
    return hashlib.sha256(json.dumps(projected, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _project(value: Any, fields: Any) -> Any:
    if fields is True:
        return value
    if fields == _QUANTITIES:
        return {k: _quantity(v) for k, v in value.items()} if isinstance(value, Mapping) else value
    if isinstance(fields, list):
        return [_project(item, fields[0]) for item in value] if isinstance(value, list) else value
    if not isinstance(value, Mapping):
        return value
    # An empty string is left out as Kubernetes' JSON leaves it out (`omitempty`): env value "".
    return {k: _project(value[k], sub) for k, sub in fields.items() if value.get(k) not in (None, "")}


def _quantity(value: Any) -> str:
    """A quantity as its number: the apiserver writes 0.5 back as 500m, 1.5Gi as 1536Mi."""
    from kubernetes.utils import parse_quantity

    try:
        return str(parse_quantity(value).normalize())
    except (ArithmeticError, TypeError, ValueError):
        return str(value)
