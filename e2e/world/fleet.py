"""The fleet as the clusters show it: pods become simulated replicas, nodes become GPUs.

`Fleet.sync` turns one cluster's snapshot into engine replicas (Running and Ready managed pods)
and a GPU table (every GPU of every GPU node, held by a pod or idle). `Fleet.tick` feeds the load
of each deployment to its replicas by the published routing weights, advances the engine, and
integrates each GPU's energy. Callers hold `Fleet.lock` around both, and around reads.
"""

from __future__ import annotations

import hashlib
import threading
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
        if not (self.rate_per_s >= 0):
            raise ValueError(f"load rate_per_s: must be >= 0, got {self.rate_per_s}")


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
        wanted = {key: pod for key, pod in state.pods.items() if self._serves(key, pod, state)}
        for key in [k for k, r in self.replicas.items() if r.cluster == cluster and k not in wanted]:
            self.engine.remove_replica(key)
            del self.replicas[key]
        for key, pod in wanted.items():
            if key in self.replicas:
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

    def _serves(self, key: str, pod: PodInfo, state: _ClusterState) -> bool:
        return (
            pod.running
            and pod.ready
            and key not in self.held_not_ready
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

    def replica_weights(self, deployment: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Slots of the deployment's replicas and each one's share of its requests."""
        members = [r for r in self.replicas.values() if r.deployment == deployment]
        if not members:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        per_cluster: dict[str, int] = {}
        for replica in members:
            per_cluster[replica.routing_cluster] = per_cluster.get(replica.routing_cluster, 0) + 1
        published = self.routing.get(deployment, {})
        cluster_weight = {c: published.get(c, 0.0) for c in per_cluster}
        if sum(cluster_weight.values()) <= 0:
            # No published routing (or none to a cluster with replicas): split evenly over replicas.
            cluster_weight = {c: float(n) for c, n in per_cluster.items()}
        slots = np.array([r.slot for r in members], dtype=np.int64)
        weights = np.array([cluster_weight[r.routing_cluster] / per_cluster[r.routing_cluster] for r in members])
        return slots, weights

    def gpu_type_of(self, replica: Replica) -> str:
        node = self.clusters[replica.cluster].nodes.get(replica.pod.node or "")
        return node.gpu_product if node is not None else ""

    def _route_by_class(
        self,
        deployment: str,
        routes: ClassRoutes,
        arrivals: Arrivals,
        slots: npt.NDArray[np.int64],
        weights: npt.NDArray[np.float64],
    ) -> None:
        """Each request to its size class's replicas, by the class's (cluster, GPU type) weights shared
        evenly over the replicas there; a class with no weight on a running replica goes by `weights`."""
        members = [r for r in self.replicas.values() if r.deployment == deployment]
        keys = [(r.routing_cluster, self.gpu_type_of(r)) for r in members]
        per_key: dict[tuple[str, str], int] = {}
        for key in keys:
            per_key[key] = per_key.get(key, 0) + 1
        nearest = routes.nearest(arrivals.prompt_tokens, arrivals.output_tokens)
        for index, (name, _, _) in enumerate(routes.sizes):
            mask = nearest == index
            if not mask.any():
                continue
            chosen = Arrivals(arrivals.times_s[mask], arrivals.prompt_tokens[mask], arrivals.output_tokens[mask])
            published = routes.weights.get(name, {})
            mine = np.array([published.get(k, 0.0) / per_key[k] for k in keys])
            if mine.sum() > 0:
                self.engine.route(np.array([r.slot for r in members], dtype=np.int64), mine, chosen)
            else:
                self.engine.route(slots, weights, chosen)

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
            slots, weights = self.replica_weights(deployment)
            if len(slots) == 0:
                self.unserved_requests[deployment] = self.unserved_requests.get(deployment, 0.0) + len(arrivals)
                continue
            routes = self.class_routing.get(deployment)
            if routes is not None:
                self._route_by_class(deployment, routes, arrivals, slots, weights)
                continue
            self.engine.route(slots, weights, arrivals)
        self.engine.advance(t0, t1, counter_scale=counter_scale)
        self._update_gpu_power()
        self.gpu_energy_mj += self.gpu_power_w * (t1 - t0) * 1000.0 * counter_scale
        self.now_s = t1
