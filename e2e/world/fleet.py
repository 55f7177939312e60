"""The fleet as the clusters show it: pods become simulated replicas, nodes become GPUs.

`Fleet.sync` turns one cluster's snapshot into engine replicas and a GPU table (every GPU of every
GPU node, held by a pod or idle). A replica (a vLLM process) starts when its pod is first Running
and Ready, keeps running (and being scraped) while the pod is Running whatever its readiness, and
takes traffic only while Ready. When the pod stops (deleted, terminating, gone) the replica drains:
no new requests, its queued and running ones go on for up to the pod's terminationGracePeriodSeconds,
then what is left is dropped (the kubelet's SIGKILL).

`Fleet.tick` feeds the load of each deployment by the published routing weights to the clusters,
and in each cluster evenly to its Ready replicas; the share of a cluster with no Ready replica is
unserved (the gateway's backend there has no endpoint and answers 503), never served elsewhere.
It then advances the engine and integrates each GPU's energy. Every request that arrives ends up
in exactly one of finished, abandoned (client timeout), dropped (its replica stopped) or unserved,
or is still live (`Fleet.request_totals`). Callers hold `Fleet.lock` around both, and around reads.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from . import labels as L
from .engine import FleetEngine, ReplicaParams
from .kube import ClassRoutes, ClusterSnapshot, NodeInfo, PodInfo
from .profiles import ProfileCatalog, idle_gpu_watts
from .trace import Arrivals, Trace, TraceLoad, TraceName, load_trace


@dataclass(frozen=True)
class LoadSpec:
    """Requests sent to one deployment: a recorded trace at a mean rate."""

    trace: TraceName = TraceName.CONVERSATION
    rate_per_s: float = 10.0
    """Mean requests per simulated second, over all the deployment's replicas."""

    def __post_init__(self) -> None:
        if not (self.rate_per_s >= 0 and math.isfinite(self.rate_per_s)):
            raise ValueError(f"load rate_per_s: must be a finite number >= 0, got {self.rate_per_s}")


@dataclass(frozen=True)
class Gpu:
    """One GPU of a node, with dcgm-exporter's identity labels."""

    cluster: str
    node: str
    index: int
    product: str
    uuid: str
    pci_bus_id: str


@dataclass
class Replica:
    """A pod served as a vLLM replica."""

    key: str
    cluster: str
    """The cluster (kubeconfig name) the pod runs in."""
    routing_cluster: str
    """The RegionalCluster name routing weights use: the pod's gridshift.dev/cluster label, else `cluster`."""
    pod: PodInfo
    deployment: str
    slot: int
    ready: bool = True
    """Takes new requests: the pod is Ready (and not held NotReady by the readiness fault)."""
    drain_until: float | None = None
    """Simulated time its pod's grace period ends, once the pod stopped; None while it runs."""

    @property
    def routable(self) -> bool:
        return self.ready and self.drain_until is None


@dataclass(frozen=True)
class RequestTotals:
    """Where one deployment's requests went since the world started (unscaled counts)."""

    arrived: float
    finished: float
    abandoned: float
    """Given up by their client after CLIENT_TIMEOUT_S in a replica's queue."""
    dropped: float
    """Still queued or running when their replica's grace period ran out."""
    unserved: float
    """Sent to a cluster with no Ready replica (or none at all)."""
    live: float
    """Queued or running now."""


@dataclass
class GpuHolder:
    cluster: str
    namespace: str
    pod: str
    container: str
    pod_uid: str


@dataclass
class _ClusterState:
    name: str
    region: str
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    allocations: dict[str, dict[int, str]] = field(default_factory=dict)
    """node -> GPU index -> pod key holding it."""
    pods: dict[str, PodInfo] = field(default_factory=dict)
    reachable: bool = True


def gpu_identity(cluster: str, node: str, index: int, product: str) -> Gpu:
    digest = hashlib.sha256(f"{cluster}/{node}/{index}".encode()).hexdigest()
    uuid = f"GPU-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    bus = 0x18 + 0x11 * index
    return Gpu(cluster, node, index, product, uuid, f"00000000:{bus:02X}:00.0")


def pod_key(cluster: str, namespace: str, name: str) -> str:
    return f"{cluster}/{namespace}/{name}"


class Fleet:
    """Replicas, GPUs and load of every cluster; not thread-safe by itself: hold `lock`."""

    def __init__(
        self,
        catalog: ProfileCatalog,
        *,
        regions: dict[str, str],
        default_load: LoadSpec | None = LoadSpec(),
        max_num_batched_tokens: int = 2048,
        seed: int = 0,
    ) -> None:
        self.lock = threading.RLock()
        self.catalog = catalog
        self.engine = FleetEngine(seed=seed)
        self.clusters = {name: _ClusterState(name, region) for name, region in regions.items()}
        self.replicas: dict[str, Replica] = {}
        self.routing: dict[str, dict[str, float]] = {}
        self.class_routing: dict[str, ClassRoutes] = {}
        """Per request-size class weights (status.classRouting): a request goes by its class's weights."""
        self.loads: dict[str, LoadSpec] = {}
        self.default_load = default_load
        self.max_num_batched_tokens = max_num_batched_tokens
        self.held_not_ready: set[str] = set()
        """Pod keys the readiness fault keeps out of service even if the cluster says Ready."""
        self.unserved_requests: dict[str, float] = {}
        """Per deployment: requests routed to a cluster with no Ready replica (503 at the gateway)."""
        self.unserved_by_cluster: dict[str, dict[str, float]] = {}
        """The same per deployment and cluster routed to ("" = no published weight and no Ready replica)."""
        self.dropped_requests: dict[str, float] = {}
        """Per deployment: requests a stopping replica still held when its grace period ran out."""
        self.arrived_requests: dict[str, float] = {}
        self._retired: dict[str, tuple[float, float]] = {}
        """Per deployment: (finished, abandoned) of replicas gone, whose engine slots were reused."""
        self._trace_loads: dict[str, tuple[LoadSpec, TraceLoad]] = {}
        self._traces: dict[TraceName, Trace] = {}
        self.gpus: list[Gpu] = []
        self.gpu_holders: list[GpuHolder | None] = []
        self.gpu_slot = np.zeros(0, dtype=np.int64)
        self._gpu_share = np.zeros(0)
        self._gpu_idle_w = np.zeros(0)
        self.gpu_energy_mj = np.zeros(0)
        """Exported energy counter per GPU, mJ, accumulated at 1/speed (see docs/world.md)."""
        self.gpu_power_w = np.zeros(0)
        self._energy_by_uuid: dict[str, float] = {}
        self.now_s = 0.0

    # ------------------------------------------------------------------ clusters

    def sync(self, cluster: str, snapshot: ClusterSnapshot) -> None:
        """Applies one cluster's nodes and pods: replicas start and stop, GPUs are (re)assigned."""
        state = self.clusters[cluster]
        state.reachable = True
        state.nodes = {node.name: node for node in snapshot.nodes}
        state.pods = {pod_key(cluster, p.namespace, p.name): p for p in snapshot.pods}
        self._assign_gpus(state)
        for key, replica in [(k, r) for k, r in self.replicas.items() if r.cluster == cluster]:
            pod = state.pods.get(key)
            if pod is not None and pod.uid == replica.pod.uid and self._process_up(key, pod, state):
                # The process outlives a readiness blip: counters go on, only new traffic stops.
                replica.pod = pod
                replica.ready = self._ready(key, pod)
            else:
                self._start_drain(replica)
        for key, pod in state.pods.items():
            # A replica starts when its pod is first Ready (vLLM's server is up); a pod of the same name
            # (a new uid) waits until the old one's process is gone.
            if key in self.replicas or not (self._process_up(key, pod, state) and self._ready(key, pod)):
                continue
            node = state.nodes[pod.node or ""]
            performance = self.catalog.performance(
                node.gpu_product, pod.gpus, pod.model_source or pod.served_model_name
            )
            params = ReplicaParams(performance, pod.max_num_seqs, self.max_num_batched_tokens)
            slot = self.engine.add_replica(key, params)
            deployment = pod.deployment or ""
            self.replicas[key] = Replica(key, cluster, pod.labels.get(L.CLUSTER, cluster), pod, deployment, slot)
        self._rebuild_gpu_table()

    def mark_unreachable(self, cluster: str) -> None:
        """The apiserver is down: pods keep serving as last seen (the data plane does not need it)."""
        self.clusters[cluster].reachable = False

    def _ready(self, key: str, pod: PodInfo) -> bool:
        return pod.ready and key not in self.held_not_ready

    def _start_drain(self, replica: Replica) -> None:
        if replica.drain_until is None:
            replica.drain_until = self.now_s + replica.pod.termination_grace_s
            replica.ready = False

    def _retire_drained(self) -> bool:
        """Stops the draining replicas that are empty or out of grace; True if any stopped."""
        done = [
            r
            for r in self.replicas.values()
            if r.drain_until is not None and (self.now_s >= r.drain_until or self.engine.live_on(r.slot) == 0)
        ]
        for replica in done:
            finished, abandoned = self._retired.get(replica.deployment, (0.0, 0.0))
            slot = replica.slot
            self._retired[replica.deployment] = (
                finished + float(self.engine.completed[slot]),
                abandoned + float(self.engine.abandoned[slot]),
            )
            lost = self.engine.remove_replica(replica.key)
            self.dropped_requests[replica.deployment] = self.dropped_requests.get(replica.deployment, 0.0) + lost
            del self.replicas[replica.key]
        return bool(done)

    def _process_up(self, key: str, pod: PodInfo, state: _ClusterState) -> bool:
        """The pod's vLLM process can run: Running, not terminating, on a known node holding its GPUs."""
        return (
            pod.running
            and pod.node in state.nodes
            and pod.gpus > 0
            and pod.deployment is not None
            and any(key in held.values() for held in state.allocations.values())
        )

    def _assign_gpus(self, state: _ClusterState) -> None:
        live = {key for key, pod in state.pods.items() if pod.running and pod.node is not None}
        for node_name in list(state.allocations):
            if node_name not in state.nodes:
                del state.allocations[node_name]
        for node_name, node in state.nodes.items():
            held = state.allocations.setdefault(node_name, {})
            for index in [i for i, key in held.items() if key not in live or i >= node.gpus]:
                del held[index]
        # Oldest pods first, so a replica keeps its GPUs when newer pods come and go.
        waiting = sorted((pod.created, key) for key, pod in state.pods.items() if key in live and pod.gpus > 0)
        for _, key in waiting:
            pod = state.pods[key]
            found = state.nodes.get(pod.node or "")
            if found is None:
                continue
            held = state.allocations[found.name]
            if key in held.values():
                continue
            free = [i for i in range(found.gpus) if i not in held]
            for index in free[: pod.gpus]:
                held[index] = key

    def _rebuild_gpu_table(self) -> None:
        for gpu, energy in zip(self.gpus, self.gpu_energy_mj.tolist(), strict=True):
            self._energy_by_uuid[gpu.uuid] = energy
        gpus: list[Gpu] = []
        holders: list[GpuHolder | None] = []
        slots: list[int] = []
        shares: list[float] = []
        idle: list[float] = []
        for cluster, state in self.clusters.items():
            for node in sorted(state.nodes.values(), key=lambda n: n.name):
                held = state.allocations.get(node.name, {})
                for index in range(node.gpus):
                    gpus.append(gpu_identity(cluster, node.name, index, node.gpu_product))
                    key = held.get(index)
                    replica = self.replicas.get(key) if key else None
                    pod = state.pods.get(key) if key else None
                    holders.append(GpuHolder(cluster, pod.namespace, pod.name, pod.container, pod.uid) if pod else None)
                    slots.append(replica.slot if replica else -1)
                    shares.append(1.0 / pod.gpus if pod else 0.0)
                    if pod is not None and replica is None:
                        # Held by a starting (or held-back) engine: a CUDA context, no work.
                        per_gpu = self.catalog.performance(node.gpu_product, pod.gpus).model.idle_power_watts
                        idle.append(per_gpu / pod.gpus)
                    else:
                        idle.append(idle_gpu_watts(node.gpu_product))
        self.gpus, self.gpu_holders = gpus, holders
        self.gpu_slot = np.array(slots, dtype=np.int64)
        self._gpu_share = np.array(shares)
        self._gpu_idle_w = np.array(idle)
        self.gpu_energy_mj = np.array([self._energy_by_uuid.get(g.uuid, 0.0) for g in gpus])
        self.gpu_power_w = self._gpu_idle_w.copy()
        self._update_gpu_power()

    def _update_gpu_power(self) -> None:
        serving = self.gpu_slot >= 0
        power = self._gpu_idle_w.copy()
        power[serving] = self.engine.power_w[self.gpu_slot[serving]] * self._gpu_share[serving]
        self.gpu_power_w = power

    # ------------------------------------------------------------------ load

    def set_load(self, deployment: str, load: LoadSpec) -> None:
        self.loads[deployment] = load

    def load_of(self, deployment: str) -> LoadSpec | None:
        return self.loads.get(deployment, self.default_load)

    def _trace_load(self, deployment: str, spec: LoadSpec) -> TraceLoad:
        current = self._trace_loads.get(deployment)
        if current is not None and current[0] == spec:
            return current[1]
        if spec.trace not in self._traces:
            self._traces[spec.trace] = load_trace(spec.trace)
        load = TraceLoad(self._traces[spec.trace], spec.rate_per_s, start_s=self.now_s)
        self._trace_loads[deployment] = (spec, load)
        return load

    def _cluster_targets(self, deployment: str) -> list[tuple[str, list[Replica], float]]:
        """(cluster, its Ready replicas, weight) the deployment's requests go to: the published weights
        (status.routing, read from the hub), each cluster's share whether or not it has a Ready replica."""
        per_cluster: dict[str, list[Replica]] = {}
        for replica in self.replicas.values():
            if replica.deployment == deployment and replica.routable:
                per_cluster.setdefault(replica.routing_cluster, []).append(replica)
        published = {c: w for c, w in self.routing.get(deployment, {}).items() if w > 0}
        if not published:
            # No weights published: the route's own weights are not the world's to know; it splits evenly
            # over the Ready replicas.
            return [(c, members, float(len(members))) for c, members in per_cluster.items()]
        return [(c, per_cluster.get(c, []), w) for c, w in sorted(published.items())]

    def replica_weights(self, deployment: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Slots of the deployment's Ready replicas and each one's share of its requests; the shares sum
        to less than the total weight where a weighted cluster has no Ready replica (that part is unserved)."""
        slots: list[int] = []
        weights: list[float] = []
        for _, members, weight in self._cluster_targets(deployment):
            slots += [r.slot for r in members]
            weights += [weight / len(members)] * len(members)
        return np.array(slots, dtype=np.int64), np.array(weights, dtype=np.float64)

    def _dispatch(
        self, deployment: str, targets: Sequence[tuple[str, Sequence[Replica], float]], arrivals: Arrivals
    ) -> None:
        """Each request to a target by weight, then evenly to one of its Ready replicas. A target with none
        keeps its share: a gateway sends it to that backend, which has no endpoint and fails it (503)."""
        slots: list[int] = []
        weights: list[float] = []
        names: list[str] = []
        for cluster, members, weight in targets:
            if weight <= 0:
                continue
            for replica in members or [None]:
                slots.append(replica.slot if replica is not None else -1)
                weights.append(weight / max(len(members), 1))
                names.append(cluster)
        if not slots:
            self._count_unserved(deployment, "", len(arrivals))
            return
        picks = self.engine.choose(np.array(weights), len(arrivals))
        chosen = np.array(slots, dtype=np.int64)[picks]
        served = chosen >= 0
        if served.any():
            taken = Arrivals(arrivals.times_s[served], arrivals.prompt_tokens[served], arrivals.output_tokens[served])
            self.engine.enqueue(chosen[served], taken)
        failed, counts = np.unique(picks[~served], return_counts=True)
        for index, count in zip(failed.tolist(), counts.tolist(), strict=True):
            self._count_unserved(deployment, names[index], float(count))

    def _count_unserved(self, deployment: str, cluster: str, count: float) -> None:
        self.unserved_requests[deployment] = self.unserved_requests.get(deployment, 0.0) + count
        per_cluster = self.unserved_by_cluster.setdefault(deployment, {})
        per_cluster[cluster] = per_cluster.get(cluster, 0.0) + count

    def request_totals(self, deployment: str) -> RequestTotals:
        """Where the deployment's requests went: arrived = finished + abandoned + dropped + unserved + live."""
        finished, abandoned = self._retired.get(deployment, (0.0, 0.0))
        slots = np.array([r.slot for r in self.replicas.values() if r.deployment == deployment], dtype=np.int64)
        engine = self.engine
        live = np.isin(engine.r_slot[: engine.live_requests], slots)
        return RequestTotals(
            arrived=self.arrived_requests.get(deployment, 0.0),
            finished=finished + float(engine.completed[slots].sum()),
            abandoned=abandoned + float(engine.abandoned[slots].sum()),
            dropped=self.dropped_requests.get(deployment, 0.0),
            unserved=self.unserved_requests.get(deployment, 0.0),
            live=float(np.count_nonzero(live)),
        )

    def gpu_type_of(self, replica: Replica) -> str:
        node = self.clusters[replica.cluster].nodes.get(replica.pod.node or "")
        return node.gpu_product if node is not None else ""

    def _route_by_class(self, deployment: str, routes: ClassRoutes, arrivals: Arrivals) -> None:
        """Each request to its size class's (cluster, GPU type) targets by the class's weights, shared evenly
        over the Ready replicas there (a target with none fails its share); a class with no published
        weight goes by the deployment's cluster weights."""
        per_key: dict[tuple[str, str], list[Replica]] = {}
        for replica in self.replicas.values():
            if replica.deployment == deployment and replica.routable:
                per_key.setdefault((replica.routing_cluster, self.gpu_type_of(replica)), []).append(replica)
        nearest = routes.nearest(arrivals.prompt_tokens, arrivals.output_tokens)
        for index, (name, _, _) in enumerate(routes.sizes):
            mask = nearest == index
            if not mask.any():
                continue
            chosen = Arrivals(arrivals.times_s[mask], arrivals.prompt_tokens[mask], arrivals.output_tokens[mask])
            published = {k: w for k, w in routes.weights.get(name, {}).items() if w > 0}
            if published:
                targets = [(k[0], per_key.get(k, []), w) for k, w in sorted(published.items())]
            else:
                targets = self._cluster_targets(deployment)
            self._dispatch(deployment, targets, chosen)

    def deployments(self) -> set[str]:
        return {r.deployment for r in self.replicas.values()} | set(self.loads)

    # ------------------------------------------------------------------ time

    def tick(self, t0: float, t1: float, counter_scale: float) -> None:
        """Simulates [t0, t1) seconds since the world's epoch."""
        for deployment in sorted(self.deployments()):
            spec = self.load_of(deployment)
            if spec is None:
                continue
            arrivals = self._trace_load(deployment, spec).arrivals(t0, t1)
            if len(arrivals) == 0:
                continue
            self.arrived_requests[deployment] = self.arrived_requests.get(deployment, 0.0) + len(arrivals)
            routes = self.class_routing.get(deployment)
            if routes is not None:
                self._route_by_class(deployment, routes, arrivals)
            else:
                self._dispatch(deployment, self._cluster_targets(deployment), arrivals)
        self.engine.advance(t0, t1, counter_scale=counter_scale)
        self.now_s = t1
        if self._retire_drained():
            self._rebuild_gpu_table()
        self._update_gpu_power()
        self.gpu_energy_mj += self.gpu_power_w * (t1 - t0) * 1000.0 * counter_scale
