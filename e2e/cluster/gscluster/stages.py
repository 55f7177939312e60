"""kwok Stage objects for the simulated world.

Passing any Stage to kwokctl disables kwok's default stages, so this module
provides the complete set we rely on: node initialisation and heartbeat, and
the pod lifecycle create -> (delay) -> ready, and delete.
"""

from __future__ import annotations

from typing import Any

NODE_CONDITIONS_TEMPLATE = """\
{{ $now := Now }}
{{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $lastTransitionTime | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}
addresses:
{{ with .status.addresses }}
{{ YAML . 1 }}
{{ else }}
{{ with NodeIP }}
- address: {{ . | Quote }}
  type: InternalIP
{{ end }}
{{ with NodeName }}
- address: {{ . | Quote }}
  type: Hostname
{{ end }}
{{ end }}
{{ with NodePort }}
daemonEndpoints:
  kubeletEndpoint:
    Port: {{ . }}
{{ end }}
"""

NODE_INIT_TEMPLATE = (
    NODE_CONDITIONS_TEMPLATE
    + """\
allocatable:
{{ with .status.allocatable }}
{{ YAML . 1 }}
{{ else }}
  cpu: 1k
  memory: 1Ti
  pods: 1M
{{ end }}
capacity:
{{ with .status.capacity }}
{{ YAML . 1 }}
{{ else }}
  cpu: 1k
  memory: 1Ti
  pods: 1M
{{ end }}
{{ $nodeInfo := .status.nodeInfo }}
{{ $kwokVersion := printf "kwok-%s" Version }}
nodeInfo:
  architecture: {{ or $nodeInfo.architecture "amd64" }}
  bootID: {{ or $nodeInfo.bootID `""` }}
  containerRuntimeVersion: {{ or $nodeInfo.containerRuntimeVersion $kwokVersion }}
  kernelVersion: {{ or $nodeInfo.kernelVersion $kwokVersion }}
  kubeProxyVersion: {{ or $nodeInfo.kubeProxyVersion $kwokVersion }}
  kubeletVersion: {{ or $nodeInfo.kubeletVersion $kwokVersion }}
  machineID: {{ or $nodeInfo.machineID `""` }}
  operatingSystem: {{ or $nodeInfo.operatingSystem "linux" }}
  osImage: {{ or $nodeInfo.osImage `""` }}
  systemUUID: {{ or $nodeInfo.systemUUID `""` }}
phase: Running
"""
)

POD_CREATE_TEMPLATE = (
    """\
{{ $now := Now }}
conditions:
- lastProbeTime: null
  lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastProbeTime: null
  lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: PodScheduled
- lastProbeTime: null
  lastTransitionTime: {{ $now | Quote }}
  message: 'containers with unready status: [{{ range .spec.containers }} {{ .name }} {{ end }}]'
  reason: ContainersNotReady
  status: "False"
  type: Ready
- lastProbeTime: null
  lastTransitionTime: {{ $now | Quote }}
  message: 'containers with unready status: [{{ range .spec.containers }} {{ .name }} {{ end }}]'
  reason: ContainersNotReady
  status: "False"
  type: ContainersReady
{{ range .spec.readinessGates }}
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: {{ .conditionType | Quote }}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: true
  state:
    waiting:
      reason: ContainerCreating
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
"""
    'podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" )'
    ' ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}\n'
    "phase: Pending\n"
)

POD_READY_TEMPLATE = """\
{{ $now := Now }}
conditions:
- lastProbeTime: null
  lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastProbeTime: null
  lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: PodScheduled
- lastProbeTime: null
  lastTransitionTime: {{ $now | Quote }}
  message: ''
  reason: ''
  status: "True"
  type: Ready
- lastProbeTime: null
  lastTransitionTime: {{ $now | Quote }}
  message: ''
  reason: ''
  status: "True"
  type: ContainersReady
{{ range .spec.readinessGates }}
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: {{ .conditionType | Quote }}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  started: true
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
"""


def _stage(name: str, kind: str, selector: list[dict[str, Any]], nxt: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": kind},
            "selector": {"matchExpressions": selector},
            **spec,
            "next": nxt,
        },
    }


def _delay(prefix: str, ms: int, jitter_ms: int) -> dict[str, Any]:
    d: dict[str, Any] = {
        "durationMilliseconds": int(ms),
        "durationFrom": {"expressionFrom": f'.metadata.annotations["{prefix}.stage.kwok.x-k8s.io/delay"]'},
    }
    # kwok: the actual delay is uniform in [duration, jitterDuration].
    if jitter_ms > ms:
        d["jitterDurationMilliseconds"] = int(jitter_ms)
        d["jitterDurationFrom"] = {
            "expressionFrom": f'.metadata.annotations["{prefix}.stage.kwok.x-k8s.io/jitter-delay"]'
        }
    return d


def build_stages(
    ready_delay_s: float, ready_jitter_s: float = 0.0, create_delay_s: float = 0.1
) -> list[dict[str, Any]]:
    """All Stage objects for one cluster.

    A pod bound to a kwok node gets an IP and ``phase: Pending`` after
    ``create_delay_s``, then becomes Running/Ready after ``ready_delay_s`` (plus
    up to ``ready_jitter_s``).  Per pod, the annotations
    ``pod-ready.stage.kwok.x-k8s.io/delay`` / ``.../jitter-delay`` (Go duration
    strings, e.g. ``"90s"``) override the world default.
    """
    ready_ms = round(ready_delay_s * 1000)
    jitter_ms = ready_ms + round(ready_jitter_s * 1000)
    create_ms = round(create_delay_s * 1000)
    not_deleted = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}
    return [
        _stage(
            "node-initialize",
            "Node",
            [
                {
                    "key": '.status.conditions.[] | select( .type == "Ready" ) | .status',
                    "operator": "NotIn",
                    "values": ["True"],
                }
            ],
            {"statusTemplate": NODE_INIT_TEMPLATE},
        ),
        _stage(
            "node-heartbeat",
            "Node",
            [
                {"key": ".status.phase", "operator": "In", "values": ["Running"]},
                {
                    "key": '.status.conditions.[] | select( .type == "Ready" ) | .status',
                    "operator": "In",
                    "values": ["True"],
                },
            ],
            {"statusTemplate": NODE_CONDITIONS_TEMPLATE},
            # Leases carry liveness (kwokctl default nodeLeaseDurationSeconds=40);
            # node status itself is refreshed rarely to keep CPU low.
            delay={"durationMilliseconds": 600000, "jitterDurationMilliseconds": 610000},
            immediateNextStage=False,
        ),
        _stage(
            "pod-create",
            "Pod",
            [not_deleted, {"key": ".status.podIP", "operator": "DoesNotExist"}],
            {
                "event": {"type": "Normal", "reason": "Created", "message": "Created container"},
                "statusTemplate": POD_CREATE_TEMPLATE,
            },
            delay=_delay("pod-create", create_ms, create_ms),
        ),
        _stage(
            "pod-ready",
            "Pod",
            [
                not_deleted,
                {"key": ".status.phase", "operator": "In", "values": ["Pending"]},
                {"key": ".status.podIP", "operator": "Exists"},
                {"key": ".status.containerStatuses.[].state.running.startedAt", "operator": "DoesNotExist"},
            ],
            {
                "event": {"type": "Normal", "reason": "Started", "message": "Started container"},
                "statusTemplate": POD_READY_TEMPLATE,
            },
            delay=_delay("pod-ready", ready_ms, jitter_ms),
        ),
        _stage(
            "pod-delete",
            "Pod",
            [
                {"key": ".metadata.deletionTimestamp", "operator": "Exists"},
                {"key": ".metadata.finalizers", "operator": "DoesNotExist"},
            ],
            {"delete": True},
            delay={
                "durationMilliseconds": 200,
                "durationFrom": {"expressionFrom": '.metadata.annotations["pod-delete.stage.kwok.x-k8s.io/delay"]'},
            },
        ),
    ]
