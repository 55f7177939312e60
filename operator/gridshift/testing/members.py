"""`FakeMemberCluster`: the MemberCluster Protocol in memory; passes tests/actuation/test_member_contract.py."""

from __future__ import annotations

import copy
import functools
import itertools
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from gridshift.actuation import labels as L
from gridshift.actuation.members import (
    MANAGED_KINDS,
    WORKLOAD_COMPANIONS,
    ActuationForbidden,
    ClusterUnreachable,
    ForeignObject,
    GpuInventory,
    Inventory,
    ListingRefused,
    LiveObject,
    NamespaceMissing,
    Owner,
    RequestStage,
    WorkloadState,
    gpu_quantity,
    labelled_and_owned_by,
    live_object,
    owned_by,
    owner_of,
    skipping_failures,
    state_from_deployment,
)
from gridshift.actuation.render import Manifest
from gridshift.testing.windows import FakeWriteWindow

_UIDS = itertools.count(1)
"""Member object uids, unique across every fake (two fakes are two member clusters)."""


@dataclass
class FakeMemberCluster(FakeWriteWindow):
    """In-memory member cluster: stores applied objects; Deployments become Ready at once unless told not to.

    `namespaces` are the namespaces that exist (None: any namespace exists); `nodes_visible` and
    `others_visible` mimic credentials without the optional inventory grants.
    """

    name: str
    gpus: dict[str, int] = field(default_factory=dict)
    reachable: bool = True
    ready_immediately: bool = True
    objects: dict[tuple[str, str, str], Manifest] = field(default_factory=dict)
    writes: int = 0
    namespaces: set[str] | None = None
    nodes_visible: bool = True
    others_visible: bool = True
    foreign_gpus: dict[str, int] = field(default_factory=dict)
    """GPUs per type held by workloads outside gridshift's namespaces."""
    closed: bool = False
    """close() was called: the service no longer uses this cluster's client."""
    forbidden_namespaces: set[str] = field(default_factory=set)
    """Namespaces the credentials may not read or write (a member Role not granted there): writing one raises
    ActuationForbidden; reading leaves it out and `unreadable_namespaces` names it, as the real adapter does."""
    _unreadable: dict[tuple[str, str], ActuationForbidden] = field(default_factory=dict, repr=False)
    last_answer: float | None = None
    """`answered_at`: time.monotonic() of the last call answered, set as each call (reachable) begins: the
    fake answers at once; a test that slows a call down wraps it, so the wrapped call answers when it ends."""

    def _writer(self) -> str:
        """As the member adapter's refusals name it (gridshift.actuation.members); every write asks the window."""
        return f"cluster {self.name}"

    def _check(self, objects: Collection[tuple[str, str, str]] = ()) -> None:
        """Reachable, and none of `objects` (kind, namespace, name) in a forbidden namespace: the real adapter
        reads each object before it writes, so its 403 is '<verb> <kind> in ...', as the real adapter words it
        (found in review: the fake's text, the apiserver's own, matched no message the real one writes)."""
        if not self.reachable:
            # The real adapter fails at discovery, before any request goes out (review: the default, the write
            # stage, made service tests read "it may have been applied" where production says "not sent").
            raise ClusterUnreachable(self.name, "fake cluster marked unreachable", stage=RequestStage.READ)
        self.last_answer = time.monotonic()
        refused = sorted(o for o in objects if o[1] in self.forbidden_namespaces)
        if refused:
            kind, namespace, name = refused[0]
            raise ActuationForbidden(self.name, f"get {kind} {namespace}/{name} (HTTP 403)", own=True)

    def _readable(self, namespaces: Collection[str], kinds: Collection[str]) -> set[str]:
        """`namespaces` less the forbidden ones, which `unreadable_namespaces` then names for each of `kinds`
        (as the real adapter; refusals are this cycle's, from `workloads` on)."""
        if "Deployment" in kinds:
            self._unreadable = {}
        refused = sorted(self.forbidden_namespaces.intersection(namespaces))
        for kind in kinds:
            for n in refused:
                refusal = f"list {kind} in {n} (HTTP 403)"
                self._unreadable[(n, kind)] = ActuationForbidden(self.name, refusal, own=True)
        return set(namespaces) - set(refused)

    def unreadable_namespaces(self, kind: str | None = None) -> Mapping[str, ActuationForbidden]:
        return {namespace: error for (namespace, of), error in self._unreadable.items() if kind in (None, of)}

    def plant(self, manifest: Manifest) -> None:
        """Put an object in place as someone else would (no ownership check): for spoofing tests."""
        meta = manifest["metadata"]
        self.objects[(manifest["kind"], meta.get("namespace", ""), meta["name"])] = copy.deepcopy(manifest)

    def apply(self, manifests: Sequence[Manifest], fence: Callable[[], None] | None = None) -> None:
        self._check([(m["kind"], m["metadata"].get("namespace", ""), m["metadata"]["name"]) for m in manifests])
        if fence is not None:
            fence()  # before the one send, as KubeMemberCluster before each
        for m in manifests:  # one write per object, each asking the window and named as the real adapter's
            self._window(f"apply {m['kind']} {m['metadata'].get('namespace', '')}/{m['metadata']['name']}")
        for manifest in manifests:
            if (manifest["apiVersion"], manifest["kind"]) not in MANAGED_KINDS:
                raise ValueError(f"gridshift does not manage {manifest['kind']} objects")
            meta = manifest["metadata"]
            namespace = meta.get("namespace", "")
            if self.namespaces is not None and namespace not in self.namespaces:
                raise NamespaceMissing(self.name, namespace)
            key = (manifest["kind"], namespace, meta["name"])
            previous = self.objects.get(key)
            wanted = owner_of(manifest)
            if previous is not None and (wanted is None or owner_of(previous) != wanted):
                raise ForeignObject.found(
                    self.name, manifest["kind"], namespace, meta["name"], owner_of(previous), wanted
                )
            stored = copy.deepcopy(manifest)
            # The apiserver gives each object a uid of its own on creation and keeps it: service.observe tells by
            # it that two RegionalClusters list one member cluster.
            uid = (previous or {}).get("metadata", {}).get("uid") or f"{self.name}-{next(_UIDS)}"
            stored["metadata"]["uid"] = uid
            if manifest["kind"] == "Deployment":
                ready = stored["spec"]["replicas"] if self.ready_immediately else 0
                if previous is not None and not self.ready_immediately:
                    ready = min(previous.get("status", {}).get("readyReplicas", 0), stored["spec"]["replicas"])
                stored["status"] = {"readyReplicas": ready}
            if previous != stored:
                self.writes += 1
            self.objects[key] = stored

    def mark_all_ready(self) -> None:
        for (kind, _, _), obj in self.objects.items():
            if kind == "Deployment":
                obj["status"] = {"readyReplicas": obj["spec"]["replicas"]}

    def workloads(self, namespaces: Collection[str]) -> list[WorkloadState]:
        self._check()
        namespaces = self._readable(namespaces, ("Deployment",))
        # Skipping what it cannot read, object by object, as the real adapter does (review: the fake failed
        # the whole cluster on one planted Deployment, so service tests could not see what the real one does).
        extract = skipping_failures(state_from_deployment, "Deployment")
        states = [
            extract(o)
            for (kind, namespace, _), o in self.objects.items()
            if kind == "Deployment" and namespace in namespaces
        ]
        return sorted((s for s in states if s is not None), key=lambda s: (s.namespace, s.name))

    def owned_objects(self, namespaces: Collection[str]) -> list[LiveObject]:
        self._check()
        kinds = {kind for _, kind in WORKLOAD_COMPANIONS}
        namespaces = self._readable(namespaces, sorted(kinds))
        found = [
            skipping_failures(functools.partial(live_object, kind=kind), kind)(o)
            for (kind, namespace, _), o in self.objects.items()
            if kind in kinds and namespace in namespaces
        ]
        return [f for f in found if f is not None]

    def delete_deployment_objects(self, owner: Owner, namespaces: Collection[str]) -> int:
        self._check()
        # A refused listing raises, as the real adapter's: the fake skipped the refusal here, so service tests
        # never saw a deletion held by a namespace the member's Role does not cover (found in review).
        refused = sorted(self.forbidden_namespaces.intersection(namespaces))
        if refused:
            raise ListingRefused(self.name, refused[0], "Deployment")
        # By the labels and the owner annotations, as the real adapter: the deployment label's value may be an
        # earlier release's (review: the fake matched today's only, so service tests missed the orphans). One
        # changed by hand is not matched, as in the real adapter: the sweep deletes it (`delete_owned_object`).
        values = L.deployment_label_values(owner.namespace, owner.name)
        doomed = [
            key
            for key, obj in self.objects.items()
            if key[1] in namespaces
            and (labels := obj["metadata"].get("labels") or {}).get(L.MANAGED_BY) == L.MANAGED_BY_VALUE
            and labels.get(L.DEPLOYMENT) in values
            and owned_by(obj, owner)
        ]
        for key in doomed:
            self._window(f"delete {key[0]} {key[1]}/{key[2]}")
            del self.objects[key]
            self.writes += 1
        return len(doomed)

    def delete_owned_object(self, owner: Owner, kind: str, namespace: str, name: str) -> bool:
        self._check([(kind, namespace, name)])
        key = (kind, namespace, name)
        obj = self.objects.get(key)
        if obj is None or not labelled_and_owned_by(obj, owner):
            return False
        self._window(f"delete {kind} {namespace}/{name}")
        del self.objects[key]
        self.writes += 1
        return True

    def gpu_inventory(self, namespaces: Collection[str]) -> Inventory:
        self._check()
        if not self.nodes_visible:
            return Inventory(nodes_visible=False, others_visible=False)
        used = {t: (self.foreign_gpus.get(t, 0) if self.others_visible else 0) for t in self.gpus}
        ours = dict.fromkeys(self.gpus, 0)  # every replica is a scheduled pod here
        for (kind, namespace, name), obj in self.objects.items():
            if kind != "Deployment" or (not self.others_visible and namespace not in namespaces):
                continue
            try:
                pod = obj["spec"]["template"]["spec"]
                product = pod.get("nodeSelector", {}).get(L.GPU_PRODUCT_NODE_LABEL)
                if product in used:
                    per_pod = gpu_quantity(
                        pod["containers"][0]["resources"]["requests"], f"Deployment {namespace}/{name}", round_up=True
                    )
                    used[product] += per_pod * int(obj["spec"]["replicas"])
                    labels = (obj["spec"]["template"].get("metadata") or {}).get("labels") or {}
                    if namespace in namespaces and labels.get(L.MANAGED_BY) == L.MANAGED_BY_VALUE:
                        ours[product] += per_pod * int(obj["spec"]["replicas"])
            except (KeyError, IndexError, TypeError, ValueError, AttributeError):
                continue  # the real adapter counts pods; a Deployment it cannot read holds none it can see
        gpus = tuple(GpuInventory(t, n, used[t], ours[t]) for t, n in sorted(self.gpus.items()))
        return Inventory(gpus, nodes_visible=True, others_visible=self.others_visible)

    def close(self) -> None:
        self.closed = True

    def answered_at(self) -> float | None:
        return self.last_answer
