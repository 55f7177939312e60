"""Member-cluster access behind one small Protocol: apply workloads, read their state and GPU inventory.

`KubeMemberCluster` talks to a real apiserver with a kubeconfig taken from a Secret (the
kubeconfig is held in memory only: never logged, never written to status or into an error).
`gridshift.testing.FakeMemberCluster` keeps objects in memory for unit tests; both pass
tests/actuation/test_member_contract.py.

Least privilege: every read and write is namespaced to the workload namespaces the caller names
(the RegionalCluster's), so the member credentials need only a namespaced Role there. GPU inventory
reads Nodes (cluster-scoped) and, to see GPUs other workloads hold, Pods of every namespace; both
are optional grants: without them the inventory says what it could not see and the caller falls back
to the GPUs the RegionalCluster declares (offerings[].maxGpus).

Ownership: objects are gridshift's only with the owner annotations (gridshift.api.labels); `apply`
never overwrites an object that another owner (or nobody) annotated, and deletes go by owner.

Reads: gridshift's Deployments, Services, PodDisruptionBudgets and NetworkPolicies (per workload
namespace), Nodes and Pods are listed once, then kept by a watch (actuation.watch): an idle cycle asks
the apiserver nothing. Only compact records are kept (WorkloadState, LiveObject: a digest of the fields
gridshift sets, NodeGpus, PodGpus), never the objects. A watch that breaks is replaced by a list on
the next read, whose errors are reported as before; credentials without `watch` list on every read.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from http import HTTPStatus
from typing import Any, ClassVar, Protocol

from gridshift import redaction
from gridshift.actuation import labels as L
from gridshift.actuation.render import Manifest, applied_digest
from gridshift.actuation.watch import WatchCache
from gridshift.api.labels import owner_value
from gridshift.deadline import CallDeadline, WriteWindow, watch_connections, window_cut, write_seconds

FIELD_MANAGER = "gridshift"

_PHRASES = {s.value: s.phrase for s in HTTPStatus}

log = logging.getLogger("gridshift.members")


LIST_PAGE = 250
"""Objects per list request: the answer of one page at a time is held as JSON, not every pod of a
cluster at once (a dozen clusters listed in parallel at 10,000 deployments)."""

APPLY_CONFLICT_ATTEMPTS = 3
"""Tries of one member apply answered 409 Conflict before it is reported as the step's failure."""


class RequestStage(StrEnum):
    """Which request of an operation a MemberError ended: what of a write may have changed the cluster."""

    READ = "read"
    """Discovery, or a read before the write (the object's GET): the write itself was never sent."""
    WRITE = "write"
    """The write request itself (apply, delete), or not known: it may have gone out, and been applied."""


class MemberError(Exception):
    """A member cluster refused or failed an operation; the message names the cluster and never holds credentials."""

    kind = "refused"
    """What `gist` says when the member answered no HTTP status."""

    def __init__(
        self, cluster: str, message: str, *, status: int | None = None, stage: RequestStage = RequestStage.WRITE
    ) -> None:
        # Messages quote the member apiserver's reason and Status message, and reach the RegionalCluster's
        # conditions, the cycle's errors and kopf's TemporaryError (stored on the tenant's object). Found in
        # review: a gateway answering 403/401 "token rejected: Bearer <token>" put the kubeconfig's token
        # there. A remembered credential (parse_kubeconfig remembers them) never does (as PriceFeedError).
        super().__init__(redaction.redact(message))
        self.cluster = cluster
        self.status = status
        """The HTTP status of the member's refusal, where it answered one."""
        self.stage = stage
        """The request it ended (`KubeMemberCluster._call` knows which). WRITE where not known: a caller must not
        read "never sent" into an error that does not say so (service.migrate words a roll-back by it)."""
        self.sent_before = False
        """An earlier request of the same write went out before this error (service.actuate: the workload's
        Deployment, with its count, before a later object's read or apply failed): the write may have taken
        effect whatever this error says of its own request."""
        self.own_words = ""
        """The error whole in gridshift's own words, where its message is all gridshift's and tells the administrator
        what to do (NamespaceMissing; ActuationForbidden naming the request gridshift made): tenants' status may say
        it. "" where the message may quote the member (the apiserver, a webhook): status then says `gist` alone."""

    @property
    def gist(self) -> str:
        """The refusal in gridshift's words alone: the member's HTTP status, or what kind of refusal it is. Never
        the message, which may quote the apiserver or an admission webhook (and whatever of the request they
        echo): redaction removes only the credentials gridshift knows. For Event notes; the log has the message."""
        if self.status is None:
            return self.kind
        return f"HTTP {self.status} {_PHRASES.get(self.status, '')}".rstrip()


class ClusterUnreachable(MemberError):
    """The member cluster's apiserver did not answer (or answered 5xx)."""

    kind = "unreachable"

    def __init__(
        self, cluster: str, detail: str, *, status: int | None = None, stage: RequestStage = RequestStage.WRITE
    ) -> None:
        super().__init__(cluster, f"cluster {cluster} unreachable: {detail}", status=status, stage=stage)


class ActuationForbidden(MemberError):
    """The credentials lack a permission; the message names the verb and resource."""

    def __init__(
        self, cluster: str, detail: str, *, stage: RequestStage = RequestStage.WRITE, own: bool = False
    ) -> None:
        """`own`: `detail` is gridshift's words alone (the request it made: verb, kind, namespace/name, never the
        apiserver's text), so status may say it whole (`own_words`): the administrator needs which permission."""
        super().__init__(
            cluster, f"cluster {cluster}: forbidden: {detail}", status=HTTPStatus.FORBIDDEN.value, stage=stage
        )
        if own:
            self.own_words = redaction.redact(f"forbidden: {detail}")


class ListingRefused(ActuationForbidden):
    """`delete_deployment_objects` was refused the listing of `namespace` (403): nothing of it could be seen, so
    whether the owner has objects there is unknown (the caller knows from what it recorded)."""

    def __init__(self, cluster: str, namespace: str, kind: str) -> None:
        super().__init__(cluster, f"list {kind} in {namespace} (HTTP 403)", own=True)
        self.namespace = namespace
        self.kind = kind


class KubeconfigInvalid(MemberError):
    """The kubeconfig in the Secret cannot be used; the message says why without quoting it."""

    kind = "kubeconfig invalid"

    def __init__(self, cluster: str, detail: str) -> None:
        super().__init__(cluster, f"cluster {cluster}: kubeconfig invalid: {detail}")


class NamespaceMissing(MemberError):
    """The workload namespace does not exist: its administrator creates it (charts/gridshift-member)."""

    kind = "workload namespace missing"

    def __init__(self, cluster: str, namespace: str) -> None:
        super().__init__(
            cluster,
            f"cluster {cluster}: workload namespace {namespace!r} does not exist; create it with gridshift's "
            "member RBAC (docs/rbac.md)",
        )
        self.namespace = namespace
        self.own_words = redaction.redact(
            f"workload namespace {namespace!r} does not exist; create it with gridshift's member RBAC (docs/rbac.md)"
        )


class ForeignObject(MemberError):
    """An object gridshift would write exists and is not gridshift's (or another deployment's): left alone."""

    kind = "an object in the way is not this deployment's"

    def __init__(self, cluster: str, kind: str, namespace: str, name: str, owner: str) -> None:
        # `own_words` leave the owner out (namespace, name, uid), which may be another tenant's InferenceDeployment,
        # and tenants read their status: the log (the administrator's) has it. The object's own name is the one
        # this deployment writes, and "not overwritten" says what gridshift did (review: status lost it).
        super().__init__(
            cluster,
            f"cluster {cluster}: {kind} {namespace}/{name} exists and belongs to {owner or 'no gridshift deployment'}; "
            "not overwritten",
        )
        self.own_words = redaction.redact(
            f"{kind} {namespace}/{name} exists and is not this deployment's; not overwritten"
        )

    @classmethod
    def found(
        cls,
        cluster: str,
        kind: str,
        namespace: str,
        name: str,
        found: tuple[str, str, str] | None,
        wanted: tuple[str, str, str] | None,
    ) -> ForeignObject:
        """The refusal to write an object owned by `wanted` over one owned by `found` (both owner_of). Found
        in review: one left by an earlier InferenceDeployment of the same name was said to belong to that name,
        which read as the deployment refusing itself; the owner's uid tells the two apart."""
        if found is None:
            return cls(cluster, kind, namespace, name, "")
        owner = f"{found[0]}/{found[1]} uid {found[2]}"
        if wanted is not None and found[:2] == wanted[:2]:
            owner = (
                f"another {owner} (this one is uid {wanted[2]}), gone or going: swept once the hub confirms "
                "that uid gone"
            )
        return cls(cluster, kind, namespace, name, owner)


@dataclass(frozen=True)
class Owner:
    """The InferenceDeployment on the hub that owns member objects."""

    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return owner_value(self.namespace, self.name)


@dataclass(frozen=True)
class WorkloadState:
    """One Deployment labelled as gridshift's in a workload namespace of a member cluster.

    `owner_uid` is empty when the owner annotations are missing: such an object is foreign, whatever
    its labels say, and is never counted as anyone's replicas.
    """

    deployment_namespace: str
    deployment_name: str
    gpu_type: str
    name: str
    namespace: str
    desired: int
    ready: int
    gpus_per_replica: int = 1
    spec_hash: str = ""
    """Hash of the rendered pod template and settings (annotation), as the object says."""
    owner_uid: str = ""
    applied: str = ""
    """`render.applied_digest` of the live object: differs from the rendered one's when a field
    gridshift sets was changed or removed by someone else (kubectl edit keeps the annotation)."""
    variant: str | None = None
    """The build its replicas run (the VARIANT annotation; "": the model's own); None where the Deployment
    was rendered before gridshift wrote it down (`model`, `image` and `args` then tell)."""
    model: str = ""
    """The vLLM container's --model (its weights), "" when it names none."""
    image: str = ""
    """The vLLM container's image."""
    args: tuple[str, ...] = ()
    """The vLLM container's args (they tell a build whose only difference is its extraArgs)."""
    max_num_seqs: int | None = None
    """The vLLM container's --max-num-seqs (the last given: vLLM keeps it), None when it sets none."""
    generation: int | None = None
    """The InferenceDeployment's metadata.generation it was last rendered from (the GENERATION annotation),
    None where it does not say (rendered before gridshift wrote it down)."""
    max_num_seqs_since: datetime | None = None
    """When its --max-num-seqs was last rendered a new value (the MAX_NUM_SEQS_SINCE annotation), None where it
    does not say or the stamp does not parse."""
    uid: str = ""
    """The member Deployment's own metadata.uid: the same object listed through two RegionalClusters has the same
    one, which tells that they name one member cluster (service.observe `_shared_members`); nobody can set it."""

    @property
    def owned(self) -> bool:
        return bool(self.owner_uid and self.deployment_name)


@dataclass(frozen=True, slots=True)
class LiveObject:
    """A Service, PodDisruptionBudget or NetworkPolicy labelled as gridshift's, as its digest
    (`render.applied_digest`): enough to tell one missing or changed by hand from one as rendered."""

    kind: str
    namespace: str
    name: str
    applied: str
    owner: tuple[str, str, str] | None = None
    """(namespace, name, uid) its owner annotations name (owner_of), None without them. Found in review: orphans
    were found among Deployments only, so one left after its Deployment's deletion (a clean-up cut short) was never
    swept and refused the apply of a deployment created again under the name, for good (service.observe)."""


def live_object(obj: Mapping[str, Any], kind: str) -> LiveObject | None:
    """`kind`: items of a list do not say theirs."""
    meta = obj.get("metadata") or {}
    if (meta.get("labels") or {}).get(L.MANAGED_BY) != L.MANAGED_BY_VALUE:
        return None
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    return LiveObject(kind, namespace, name, applied_digest(obj, kind), owner_of(obj))


@dataclass(frozen=True)
class GpuInventory:
    """GPUs of one type on Ready nodes, and how many are requested by pods."""

    gpu_type: str
    allocatable: int
    used: int
    used_in_namespaces: int = 0
    """Of `used`, requested by gridshift-labelled pods in the namespaces asked about (the workload namespaces):
    what gridshift's replicas hold, as scheduled pods, not as the Deployments' counts (inputs.planner_cluster)."""


@dataclass(frozen=True)
class Inventory:
    """What a member cluster shows of its GPUs to gridshift's credentials."""

    gpus: tuple[GpuInventory, ...] = ()
    nodes_visible: bool = True
    """False when Nodes may not be listed: allocatable GPUs are unknown (use the declared maxGpus)."""
    others_visible: bool = True
    """False when Pods outside the workload namespaces may not be listed: GPUs others hold are unknown."""


class MemberCluster(Protocol):
    """What the service needs from a member cluster."""

    name: str

    def apply(self, manifests: Sequence[Manifest], fence: Callable[[], None] | None = None) -> None:
        """Server-side apply; ForeignObject if an object exists with another owner, NamespaceMissing if its
        namespace does not exist. `fence` is called before each send, retries included, and raises to stop
        (the service's raises Fenced)."""
        ...

    def workloads(self, namespaces: Collection[str]) -> list[WorkloadState]: ...

    def owned_objects(self, namespaces: Collection[str]) -> list[LiveObject]:
        """gridshift's Services, PodDisruptionBudgets and NetworkPolicies in `namespaces` (by label), as digests
        with their owner annotations (what the sweep finds orphans by, as it does in `workloads`)."""
        ...

    def unreadable_namespaces(self, kind: str | None = None) -> Mapping[str, ActuationForbidden]:
        """Namespaces asked of `workloads`/`owned_objects`/`gpu_inventory` since the last `workloads` call (a
        cycle's first read) whose listing the credentials were refused (403), with the refusal: their objects
        are left out of the answers, not raised, so that one tenant's namespace the member's Role does not
        cover costs that tenant only. The caller decides what a refusal of every namespace means. `kind`
        ("Deployment", "Service", ...): the refusals of that kind's listings only; None: of any kind."""
        ...

    def delete_deployment_objects(self, owner: Owner, namespaces: Collection[str]) -> int:
        """Delete every object of `owner` in `namespaces`; returns how many. Listed by the owner's
        `gridshift.dev/deployment` values (today's and the one an earlier release derived), deleted where their
        owner annotations (UID included) are the owner's. One whose label was changed since is not listed: the
        sweep finds it by its annotations and deletes it with `delete_owned_object`. ListingRefused when a
        namespace's listing is refused (403): its objects, if any, could not be seen."""
        ...

    def delete_owned_object(self, owner: Owner, kind: str, namespace: str, name: str) -> bool:
        """Delete the object `kind` `namespace`/`name` if it is gridshift's and its owner annotations (UID
        included) are `owner`'s when read now; True if it was deleted, False if it is gone or not (or no longer)
        the owner's. What the sweep deletes the orphans it found with, whatever their labels' values."""
        ...

    def gpu_inventory(self, namespaces: Collection[str]) -> Inventory: ...

    def limit_writes(self, window: WriteWindow) -> None:
        """Every write request from now on (apply, delete) ends within `window.seconds_left()` at its send, or
        within the api timeout where that is sooner, and is not sent with under MIN_WRITE_SECONDS left; cut or
        not sent for want of time, it raises `window.refused(...)` (the service's: Fenced). Reads are not
        limited: one that answers late changes nothing (gridshift.deadline)."""
        ...

    def close(self) -> None:
        """Stop whatever the client keeps running (watches): the cluster is no longer used."""
        ...

    def answered_at(self) -> float | None:
        """time.monotonic() when a call of this client last got its whole answer from the apiserver (an error
        status included; a call given up at its timeout or unreachable is none), None before any: the observe
        stage waits on a cluster's read as long as its calls keep answering (service.observe)."""
        ...


MANAGED_KINDS: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
)
"""Everything gridshift writes in a member cluster, in apply order."""

WORKLOAD_COMPANIONS = MANAGED_KINDS[1:]
"""The kinds written beside each Deployment, read back by `owned_objects`."""


_API_VERSIONS = {kind: api_version for api_version, kind in MANAGED_KINDS}


def owner_of(obj: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(namespace, name, uid) from an object's owner annotations, or None when it has none."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    owner, uid = annotations.get(L.OWNER), annotations.get(L.OWNER_UID)
    if not isinstance(owner, str) or not isinstance(uid, str) or "/" not in owner or not uid:
        return None
    namespace, _, name = owner.partition("/")
    return namespace, name, uid


def owned_by(obj: Mapping[str, Any], owner: Owner) -> bool:
    found = owner_of(obj)
    return found is not None and found[:2] == (owner.namespace, owner.name) and (not owner.uid or found[2] == owner.uid)


def labelled_and_owned_by(obj: Mapping[str, Any], owner: Owner) -> bool:
    """Labelled gridshift's (whatever its `gridshift.dev/deployment` value) and `owner`'s by its annotations."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(L.MANAGED_BY) == L.MANAGED_BY_VALUE and owned_by(obj, owner)


def state_from_deployment(obj: Mapping[str, Any]) -> WorkloadState | None:
    meta = obj.get("metadata", {})
    labels = meta.get("labels") or {}
    if labels.get(L.MANAGED_BY) != L.MANAGED_BY_VALUE:
        return None
    owner = owner_of(obj)
    namespace, name, uid = owner if owner is not None else ("", "", "")
    return WorkloadState(
        deployment_namespace=namespace,
        deployment_name=name,
        gpu_type=_template_gpu_type(obj) or labels.get(L.GPU_TYPE, ""),
        name=meta["name"],
        namespace=meta["namespace"],
        # Never below 0: the apiserver refuses negative counts, but one that reached the planner raised there
        # and ended the cycle for every deployment (found in review, with a fake member cluster).
        desired=max(0, int((obj.get("spec") or {}).get("replicas") or 0)),
        ready=max(0, int((obj.get("status") or {}).get("readyReplicas") or 0)),
        # A foreign Deployment is never counted as anyone's replicas: what it asks for is not read at all.
        gpus_per_replica=_template_gpus(obj) if owner is not None else 0,
        spec_hash=str((meta.get("annotations") or {}).get(L.SPEC_HASH, "")),
        owner_uid=uid,
        applied=applied_digest(obj, "Deployment") if owner is not None else "",
        generation=_whole((meta.get("annotations") or {}).get(L.GENERATION)),
        max_num_seqs_since=_instant((meta.get("annotations") or {}).get(L.MAX_NUM_SEQS_SINCE)),
        uid=str(meta.get("uid") or ""),
        **_engine(obj, meta.get("annotations") or {}),
    )


def _engine(obj: Mapping[str, Any], annotations: Mapping[str, Any]) -> dict[str, Any]:
    """What the vLLM container of a Deployment runs (WorkloadState.variant, model, image, args, max_num_seqs),
    read from what gridshift renders (render.render_deployment): actuate keeps it where the plan has no
    option for the Deployment's cluster and GPU type, and within a dead band of the planned batch size.
    Anything unreadable is left unknown, never an error: the Deployment is counted all the same."""
    variant = annotations.get(L.VARIANT)
    try:
        containers = obj["spec"]["template"]["spec"]["containers"] or []
        container = next((c for c in containers if c.get("name") == "vllm"), containers[0])
        args = [str(a) for a in container.get("args") or []]
        image = str(container.get("image") or "")
    except (KeyError, IndexError, TypeError, AttributeError):
        return {"variant": variant if isinstance(variant, str) else None}
    return {
        "variant": variant if isinstance(variant, str) else None,
        "model": _last_flag(args, "--model") or "",
        "image": image,
        "args": tuple(args),
        "max_num_seqs": _whole(_last_flag(args, "--max-num-seqs")),
    }


def _last_flag(args: Sequence[str], flag: str) -> str | None:
    """The value of the last `flag` in `args` (`flag value` or `flag=value`): argparse keeps the last."""
    found = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            found = args[i + 1]
        elif arg.startswith(f"{flag}="):
            found = arg.partition("=")[2]
    return found


def _whole(text: Any) -> int | None:
    """A positive whole number, else None."""
    try:
        value = int(text) if text is not None else 0
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def _instant(text: Any) -> datetime | None:
    """An RFC 3339 time with its offset, in UTC, else None (an annotation anyone may edit)."""
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text)
        # Converting to UTC can leave datetime's range (0001-01-01T00:00+01:00): found in review, the OverflowError
        # skipped the whole Deployment as not understood, its replicas uncounted.
        return parsed.astimezone(UTC) if parsed.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def _template_gpu_type(obj: Mapping[str, Any]) -> str | None:
    """The GPU product a Deployment's pods are pinned to (the label may be a bounded digest of it)."""
    try:
        selector = obj["spec"]["template"]["spec"].get("nodeSelector") or {}
    except (KeyError, TypeError, AttributeError):
        return None
    value = selector.get(L.GPU_PRODUCT_NODE_LABEL)
    return str(value) if value else None


def _template_gpus(obj: Mapping[str, Any]) -> int:
    try:
        containers = obj["spec"]["template"]["spec"]["containers"]
    except (KeyError, TypeError):
        return 0
    what = f"Deployment {_name_of(obj)}"
    # GPUs our replicas hold are given back to the planner as free capacity: a fraction rounds down.
    return sum(gpu_quantity((c.get("resources") or {}).get("limits"), what, round_up=False) for c in containers)


def gpu_quantity(resources: Mapping[str, Any] | None, what: str, *, round_up: bool) -> int:
    """Whole GPUs in a resources map (requests, limits, allocatable) of the object `what` names.

    Any Kubernetes quantity is read ("1k" is 1000 GPUs). The apiserver admits only whole extended
    resources, but a fraction is rounded the way that is safe for the caller (`round_up` for GPUs in
    use, down for GPUs offered), and a value that is no quantity counts 0; both are logged. One odd
    object never fails the observation of its cluster, whose other tenants' replicas it would hide.
    """
    if not resources or resources.get(L.GPU_RESOURCE) is None:
        return 0
    from kubernetes.utils import parse_quantity

    raw = resources[L.GPU_RESOURCE]
    try:
        value: Decimal = parse_quantity(raw)
    except (ArithmeticError, TypeError, ValueError):
        log.warning("%s: %s %r is not a quantity: counted as 0", what, L.GPU_RESOURCE, str(raw)[:40])
        return 0
    whole = math.ceil(value) if round_up else math.floor(value)
    if whole != value:
        log.warning("%s: %s %s is not a whole number: counted as %d", what, L.GPU_RESOURCE, value, whole)
    return max(0, whole)


def _name_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}".lstrip("/")


@dataclass(frozen=True, slots=True)
class NodeGpus:
    """What the inventory reads of a Node: its GPU product and allocatable GPUs (product None: not
    counted, being not Ready, cordoned or without the product label)."""

    name: str
    product: str | None
    allocatable: int


@dataclass(frozen=True, slots=True)
class PodGpus:
    """What the inventory reads of a live Pod: the node it runs on, the GPUs it requests, its namespace."""

    node: str
    gpus: int
    namespace: str = ""
    managed: bool = False
    """Labelled as gridshift's (a replica's pod, or one made to look like it: counted at most as our replicas)."""


def node_gpus(node: Mapping[str, Any]) -> NodeGpus:
    meta = node.get("metadata") or {}
    product = (meta.get("labels") or {}).get(L.GPU_PRODUCT_NODE_LABEL)
    status = node.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    if product is None or not ready or (node.get("spec") or {}).get("unschedulable"):
        return NodeGpus(str(meta.get("name", "")), None, 0)
    allocatable = gpu_quantity(status.get("allocatable"), f"Node {_name_of(node)}", round_up=False)
    return NodeGpus(str(meta.get("name", "")), str(product), allocatable)


def pod_gpus(pod: Mapping[str, Any]) -> PodGpus | None:
    """None for a pod that holds no GPU: not scheduled, finished, or requesting none."""
    spec = pod.get("spec") or {}
    node = spec.get("nodeName")
    if not node or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return None
    what = f"Pod {_name_of(pod)}"
    gpus = sum(
        gpu_quantity((c.get("resources") or {}).get("requests"), what, round_up=True)
        for c in spec.get("containers") or []
    )
    if not gpus:
        return None
    meta = pod.get("metadata") or {}
    managed = (meta.get("labels") or {}).get(L.MANAGED_BY) == L.MANAGED_BY_VALUE
    return PodGpus(str(node), gpus, str(meta.get("namespace") or ""), managed)


def inventory_from(
    nodes: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]], namespaces: Collection[str] = ()
) -> list[GpuInventory]:
    """Sum allocatable GPUs of Ready nodes per product label, and GPU requests of live pods on them (of which
    those in `namespaces` apart)."""
    return inventory_of(map(node_gpus, nodes), (p for p in map(pod_gpus, pods) if p is not None), namespaces)


def inventory_of(
    nodes: Iterable[NodeGpus], pods: Iterable[PodGpus], namespaces: Collection[str] = ()
) -> list[GpuInventory]:
    """`inventory_from` on the records a watch cache keeps."""
    product_of_node: dict[str, str] = {}
    allocatable: dict[str, int] = {}
    for node in nodes:
        if node.product is None:
            continue
        product_of_node[node.name] = node.product
        allocatable[node.product] = allocatable.get(node.product, 0) + node.allocatable
    used = dict.fromkeys(allocatable, 0)
    ours = dict.fromkeys(allocatable, 0)
    asked = frozenset(namespaces)
    for pod in pods:
        product = product_of_node.get(pod.node)
        if product is not None:
            used[product] += pod.gpus
            # Only gridshift's pods: a tenant's own GPU pods in its workload namespace are not our replicas
            # (self-review: they made up for our Pending ones).
            if pod.managed and pod.namespace in asked:
                ours[product] += pod.gpus
    return [GpuInventory(t, allocatable[t], used[t], ours[t]) for t in sorted(allocatable)]


class KubeMemberCluster:
    """A real member cluster, reached with a kubeconfig (held in memory only)."""

    _KINDS: ClassVar[frozenset[tuple[str, str]]] = frozenset(MANAGED_KINDS)

    def __init__(
        self, name: str, kubeconfig: Mapping[str, Any], timeout_seconds: float = 10.0, *, watch: bool = True
    ) -> None:
        """`watch`: keep gridshift's Deployments, the Nodes and the Pods in watch-fed caches
        (actuation.watch) rather than listing them on every read."""
        from kubernetes import config
        from kubernetes.config.config_exception import ConfigException

        self.name = name
        self._timeout = timeout_seconds
        if not isinstance(kubeconfig, Mapping):
            raise KubeconfigInvalid(name, "not a YAML mapping")
        if not kubeconfig.get("current-context"):
            raise KubeconfigInvalid(name, "no current-context")
        try:
            self._api_client = config.new_client_from_config_dict(dict(kubeconfig))
        except (ConfigException, KeyError, TypeError, ValueError, AttributeError) as error:
            # The client's messages can quote the kubeconfig (tokens included): name the class only.
            raise KubeconfigInvalid(name, f"the Kubernetes client refused it ({type(error).__name__})") from None
        watch_connections(self._api_client.rest_client.pool_manager)  # for CallDeadline (`_call`)
        self._dynamic: Any = None
        self._watch = watch
        self._caches: dict[tuple[str, str], WatchCache[Any]] = {}
        self._unreadable: dict[tuple[str, str], ActuationForbidden] = {}
        """(namespace, kind) -> the refusal of its listing this cycle (`unreadable_namespaces`)."""
        self._caches_lock = threading.Lock()
        self._answered_at: float | None = None
        """`answered_at`: set by `_call`, the one way every request goes out."""
        self._write_window: WriteWindow | None = None
        """`limit_writes`: None, every write gets the api timeout."""

    def __repr__(self) -> str:  # never show credentials
        return f"KubeMemberCluster({self.name!r})"

    def _client(self) -> Any:
        if self._dynamic is None:
            self._dynamic = self._call(lambda: _timed_dynamic_client()(self._api_client, self._timeout), "discovery")
        return self._dynamic

    def limit_writes(self, window: WriteWindow) -> None:
        self._write_window = window

    def _call(self, fn: Any, what: str, *, write: bool = False) -> Any:
        """`fn`'s answer, its errors as MemberErrors; every request in `fn` is over by the api timeout, whole
        answer included (gridshift.deadline), or the call raises ClusterUnreachable. A `write` (one request: a
        two-request write is two calls, each capped at its own send) is over by the write window where that is
        sooner (`limit_writes`); cut by the window, it raises the window's refusal, not ClusterUnreachable: the
        cluster may be fine, the Lease's margin ran out."""
        seconds = self._timeout
        window = self._write_window if write else None
        if window is not None:
            write_seconds(window, f"cluster {self.name}: {what}")
        deadline = CallDeadline(seconds, None if window is None else window.seconds_left)
        sent = time.monotonic()
        stage = RequestStage.WRITE if write else RequestStage.READ
        with deadline:
            try:
                result = self._answer(fn, what, stage)
            except Exception as error:
                if not deadline.fired:
                    if not isinstance(error, ClusterUnreachable):
                        self._answered_at = time.monotonic()  # an error status is an answer too
                    raise
                result = None  # whatever the cut answer raised: the deadline is why
        if deadline.fired:  # an answer cut at the deadline may still have parsed: never trusted
            if window is not None and deadline.cut_by_window:
                raise window_cut(window, f"cluster {self.name}: {what}", sent)
            raise ClusterUnreachable(self.name, f"{what}: no complete answer within {self._timeout:g} s", stage=stage)
        self._answered_at = time.monotonic()
        return result

    def answered_at(self) -> float | None:
        return self._answered_at

    def _answer(self, fn: Any, what: str, stage: RequestStage) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn()
        except ApiException as error:
            if error.status == 403:
                # Not the apiserver's text: it names the member credentials' identity ("User
                # system:serviceaccount:..."), and this message reaches tenants' status and Events (found in
                # review). `what` names the verb, kind and namespace, which is what the administrator needs.
                raise ActuationForbidden(self.name, f"{what} (HTTP 403)", stage=stage, own=True) from None
            if not error.status:
                # The client's transport error (status 0): its reason is urllib3's whole text (host, path).
                raise ClusterUnreachable(self.name, f"{what}: no answer (transport error)", stage=stage) from None
            if error.status >= 500:
                raise ClusterUnreachable(
                    self.name, f"{what}: HTTP {error.status} {error.reason}", status=error.status, stage=stage
                ) from None
            if error.status in (404, 409):
                raise  # the callers know what a missing object or a conflict means for them
            # e.g. 422: the apiserver refused what gridshift rendered. Say what, never the request itself.
            raise MemberError(
                self.name,
                f"cluster {self.name}: {what}: HTTP {error.status} {error.reason}: {_message(error)}",
                status=error.status,
                stage=stage,
            ) from None
        except (HTTPError, OSError) as error:
            raise ClusterUnreachable(self.name, f"{what}: {type(error).__name__}", stage=stage) from None

    def _resource(self, api_version: str, kind: str) -> Any:
        client = self._client()
        # Discovery of the kind's group (its first use) is a call like any other, under the same deadline.
        return self._call(lambda: client.resources.get(api_version=api_version, kind=kind), f"discovery of {kind}")

    def _get(self, resource: Any, name: str, namespace: str | None) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            found = self._call(
                lambda: resource.get(name=name, namespace=namespace, _request_timeout=self._timeout),
                f"get {resource.kind} {namespace}/{name}",
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        result: dict[str, Any] = found.to_dict()
        return result

    def apply(self, manifests: Sequence[Manifest], fence: Callable[[], None] | None = None) -> None:
        for manifest in manifests:
            if (manifest["apiVersion"], manifest["kind"]) not in self._KINDS:
                raise ValueError(f"gridshift does not manage {manifest['kind']} objects")
            self._apply_retrying(manifest, fence)

    def _apply_retrying(self, manifest: Manifest, fence: Callable[[], None] | None) -> None:
        """One manifest, applied again on 409 Conflict (up to APPLY_CONFLICT_ATTEMPTS): a create raced by
        another writer, or a field taken by another manager between our read and our apply. Each try
        reads the object again, so ownership is judged on what is there now, and is fenced first: found in
        review, fenced once before the first, a retry force-applied after the Lease lapsed, over what the
        new leader had written; and again right before the apply, after the read (`_apply_one`)."""
        from kubernetes.client.exceptions import ApiException

        for attempt in range(1, APPLY_CONFLICT_ATTEMPTS + 1):
            if fence is not None:
                fence()
            try:
                self._apply_one(manifest, fence)
                return
            except ApiException as error:
                if error.status != 409:
                    raise
                if attempt == APPLY_CONFLICT_ATTEMPTS:
                    meta = manifest["metadata"]
                    raise MemberError(
                        self.name,
                        f"cluster {self.name}: apply {manifest['kind']} {meta.get('namespace') or ''}/{meta['name']}: "
                        f"HTTP 409 Conflict {APPLY_CONFLICT_ATTEMPTS} times: {_message(error)}",
                        status=HTTPStatus.CONFLICT.value,
                    ) from None

    def _apply_one(self, manifest: Manifest, fence: Callable[[], None] | None = None) -> None:
        from kubernetes.client.exceptions import ApiException

        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        meta = manifest["metadata"]
        namespace = meta.get("namespace")
        existing = self._get(resource, meta["name"], namespace)
        wanted = owner_of(manifest)
        if existing is not None and (wanted is None or owner_of(existing) != wanted):
            raise ForeignObject.found(
                self.name, manifest["kind"], namespace or "", meta["name"], owner_of(existing), wanted
            )
        body = manifest
        if existing is not None:
            # The read's resourceVersion makes the forced apply conditional: an object deleted and re-created by
            # another owner between our read and our apply answers 409 Conflict, and the retry judges the new one
            # (found in review: it was overwritten, its owner annotations made ours).
            version = (existing.get("metadata") or {}).get("resourceVersion")
            if version:
                body = {**manifest, "metadata": {**meta, "resourceVersion": version}}
        if fence is not None:
            # Again after the read, which may have taken up to the request timeout: found in review, a replica
            # fenced before it sent the read force-applied after its Lease had passed to another.
            fence()
        try:
            applied = self._call(
                lambda: resource.server_side_apply(
                    body=body,
                    name=meta["name"],
                    namespace=namespace,
                    field_manager=FIELD_MANAGER,
                    # Force only over our own object (a field another manager took, e.g. a hand scale);
                    # a new object is created without force.
                    force_conflicts=existing is not None,
                    _request_timeout=self._timeout,
                ),
                f"apply {manifest['kind']} {namespace or ''}/{meta['name']}",
                write=True,
            )
        except ApiException as error:
            if error.status == 404 and namespace:
                raise NamespaceMissing(self.name, namespace) from None
            raise
        if manifest["kind"] == "Deployment":
            version = getattr(getattr(applied, "metadata", None), "resourceVersion", None)
            self._wrote("Deployment", namespace or "", meta["name"], str(version) if version else "")

    def _wrote(self, kind: str, namespace: str, name: str, resource_version: str | None) -> None:
        """A write of ours to a watched object: reads wait for its watch to deliver it (actuation.watch)."""
        cache = self._caches.get((kind, namespace))
        if cache is not None:
            # An answer without a resourceVersion cannot be waited for: the read lists instead.
            cache.expect(f"{namespace}/{name}", resource_version if resource_version != "" else "~unknown")

    def _list(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        return self._list_versioned(api_version, kind, namespace, label_selector)[0]

    def _list_versioned(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """The items and the list's resourceVersion ('' when the namespace is gone)."""
        items: list[dict[str, Any]] = []
        version = ""
        for page, page_version in self._list_pages(api_version, kind, namespace, label_selector):
            items.extend(page)
            version = page_version
        return items, version

    def _list_pages(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """Each page of a list, with the list's resourceVersion on the last one ('' before it, and when
        the namespace is gone)."""
        from kubernetes.client.exceptions import ApiException

        resource = self._resource(api_version, kind)
        where = f" in {namespace}" if namespace else ""
        token: str | None = None
        while True:
            try:
                result = self._call(
                    lambda token=token: resource.get(
                        namespace=namespace,
                        label_selector=label_selector,
                        limit=LIST_PAGE,
                        _continue=token,
                        _request_timeout=self._timeout,
                        serializer=_plain,
                    ),
                    f"list {kind}{where}",
                )
            except ApiException as error:
                if error.status == 404 and namespace:
                    yield [], ""  # the namespace is gone, or not created yet: nothing of ours there
                    return
                raise
            meta = result.get("metadata") or {}
            token = meta.get("continue") or None
            if token is None:
                # Every page of a list is served from the same snapshot: one resourceVersion.
                yield list(result.get("items") or []), str(meta.get("resourceVersion") or "")
                return
            yield list(result.get("items") or []), ""

    def _cached(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: str | None,
        extract: Callable[[Mapping[str, Any]], Any],
    ) -> list[Any]:
        """`extract` of every object listed, read from the watch cache when it is synced; listed (and the
        cache seeded, its watch started) otherwise. Listing errors are raised as from `_list`."""
        extract = skipping_failures(extract, kind)
        if not self._watch:
            return [r for r in map(extract, self._list(api_version, kind, namespace, label_selector)) if r is not None]
        key = (kind, namespace or "")
        with self._caches_lock:
            cache = self._caches.get(key)
            if cache is None:
                cache = self._caches[key] = WatchCache(
                    f"{self.name} {kind}{' in ' + namespace if namespace else ''}",
                    lambda rv, seconds: self._open_watch(api_version, kind, namespace, label_selector, rv, seconds),
                    extract,
                )
        found = cache.read()
        if found is not None:
            return found
        version = ""

        def listed() -> Iterator[dict[str, Any]]:
            nonlocal version
            for page, page_version in self._list_pages(api_version, kind, namespace, label_selector):
                version = page_version
                yield from page

        return cache.seed(listed(), lambda: version)

    def _open_watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: str | None,
        resource_version: str,
        seconds: int,
    ) -> Any:
        resource = self._resource(api_version, kind)
        return self._client().request(
            "get",
            resource.path(namespace=namespace),
            watch=True,
            resource_version=resource_version,
            label_selector=label_selector,
            allow_watch_bookmarks=True,
            timeout_seconds=seconds,
            _request_timeout=(self._timeout, seconds + 30),
            serialize=False,  # the streaming response itself (serialising would read it to its end)
        )

    def close(self) -> None:
        with self._caches_lock:
            caches, self._caches = list(self._caches.values()), {}
        for cache in caches:
            cache.close()

    def _forget_namespaces_except(self, kind: str, namespaces: Collection[str]) -> None:
        """Stop watching namespaces no longer asked about (a tenant's last deployment gone)."""
        with self._caches_lock:
            gone = [k for k in self._caches if k[0] == kind and k[1] and k[1] not in namespaces]
            caches = [self._caches.pop(k) for k in gone]
        for cache in caches:
            cache.close()

    def workloads(self, namespaces: Collection[str]) -> list[WorkloadState]:
        wanted = sorted(set(namespaces))
        self._forget_namespaces_except("Deployment", wanted)
        # A cycle reads Deployments first: the refusals named are this cycle's (review: one remembered until
        # the namespace was no longer asked about kept a tenant whose Role came late unread, its replicas
        # counted again from the last cycle on top of those read, one more copy a cycle).
        self._unreadable = {}
        states = [
            state
            for namespace in wanted
            for state in self._readable(
                namespace,
                "apps/v1",
                "Deployment",
                f"{L.MANAGED_BY}={L.MANAGED_BY_VALUE}",
                state_from_deployment,
            )
        ]
        return sorted(states, key=lambda s: (s.namespace, s.name))

    def owned_objects(self, namespaces: Collection[str]) -> list[LiveObject]:
        wanted = sorted(set(namespaces))
        found: list[LiveObject] = []
        for api_version, kind in WORKLOAD_COMPANIONS:
            self._forget_namespaces_except(kind, wanted)
            for namespace in wanted:
                # Watched like the Deployments: an idle cycle asks the apiserver nothing.
                found += self._readable(
                    namespace,
                    api_version,
                    kind,
                    f"{L.MANAGED_BY}={L.MANAGED_BY_VALUE}",
                    functools.partial(_live_object_of, kind),
                )
        return found

    def unreadable_namespaces(self, kind: str | None = None) -> Mapping[str, ActuationForbidden]:
        return {namespace: error for (namespace, of), error in self._unreadable.items() if kind in (None, of)}

    def _readable(
        self,
        namespace: str,
        api_version: str,
        kind: str,
        label_selector: str | None,
        extract: Callable[[Mapping[str, Any]], Any],
    ) -> list[Any]:
        """`_cached` of one namespace; a refused listing is remembered (`unreadable_namespaces`) and reads as
        nothing, the other namespaces' caches and watches kept as they are."""
        try:
            return self._cached(api_version, kind, namespace, label_selector, extract)
        except ActuationForbidden as error:
            self._unreadable[(namespace, kind)] = error
            return []

    def delete_deployment_objects(self, owner: Owner, namespaces: Collection[str]) -> int:
        from kubernetes.client.exceptions import ApiException

        # The owner's objects by every `gridshift.dev/deployment` value gridshift may have written, then by its
        # annotations: listed by today's value alone, an object labelled by an earlier release (row 53 relabelled
        # names ending in -<16 hex>) was never deleted; listed by managed-by alone, each deletion read every
        # gridshift object of the namespace (review: 800 objects a deletion at 400 owners, quadratic in a bulk
        # deletion). An object whose label was changed by hand is not listed here: the sweep finds it by its
        # annotations, once its owner is gone from the hub, and deletes it by name (`delete_owned_object`).
        values = ",".join(L.deployment_label_values(owner.namespace, owner.name))
        selector = f"{L.MANAGED_BY}={L.MANAGED_BY_VALUE},{L.DEPLOYMENT} in ({values})"
        deleted = 0
        for namespace in sorted(set(namespaces)):
            for api_version, kind in MANAGED_KINDS:
                resource = self._resource(api_version, kind)
                try:
                    listed = self._list(api_version, kind, namespace, selector)
                except ActuationForbidden:
                    raise ListingRefused(self.name, namespace, kind) from None
                for obj in listed:
                    if not owned_by(obj, owner):
                        continue  # another owner's, or nobody's: not ours to delete
                    meta = obj["metadata"]
                    # Only the object judged ours (its uid as listed): one another owner put in its place since
                    # is left alone, 409 (self-review, the sibling of the apply's resourceVersion).
                    body = {"preconditions": {"uid": meta["uid"]}} if meta.get("uid") else None
                    try:
                        self._call(
                            lambda r=resource, meta=meta, body=body: r.delete(
                                name=meta["name"],
                                namespace=meta["namespace"],
                                body=body,
                                _request_timeout=self._timeout,
                            ),
                            f"delete {kind} {meta['namespace']}/{meta['name']}",
                            write=True,
                        )
                    except ApiException as error:
                        # 404: gone since the listing (the sweep, or another deletion, was first): not ours to
                        # count, nor a failure (review: it escaped as a raw NotFoundError, no MemberError).
                        if error.status in (404, 409):
                            continue
                        raise
                    if kind == "Deployment":
                        self._wrote(kind, meta["namespace"], meta["name"], None)
                    deleted += 1
        return deleted

    def delete_owned_object(self, owner: Owner, kind: str, namespace: str, name: str) -> bool:
        from kubernetes.client.exceptions import ApiException

        api_version = _API_VERSIONS.get(kind)
        if api_version is None:
            raise ValueError(f"gridshift does not manage {kind} objects")
        resource = self._resource(api_version, kind)
        # Read now, not trusted from the sweep's listing: the owner annotations may have changed since, or the
        # object been deleted and another put under its name (a cycle ago).
        obj = self._get(resource, name, namespace)
        if obj is None or not labelled_and_owned_by(obj, owner):
            return False
        uid = (obj.get("metadata") or {}).get("uid")
        # The object judged ours, by its own uid: one put in its place since the read is left alone (409).
        body = {"preconditions": {"uid": uid}} if uid else None
        try:
            self._call(
                lambda: resource.delete(name=name, namespace=namespace, body=body, _request_timeout=self._timeout),
                f"delete {kind} {namespace}/{name}",
                write=True,
            )
        except ApiException as error:
            if error.status in (404, 409):
                return False
            raise
        if kind == "Deployment":
            self._wrote(kind, namespace, name, None)
        return True

    def gpu_inventory(self, namespaces: Collection[str]) -> Inventory:
        try:
            nodes = self._cached("v1", "Node", None, None, node_gpus)
        except ActuationForbidden:
            return Inventory(nodes_visible=False, others_visible=False)
        try:
            pods = self._cached("v1", "Pod", None, None, pod_gpus)
            others_visible = True
        except ActuationForbidden:
            pods = [
                pod
                for namespace in sorted(set(namespaces))
                for pod in self._readable(namespace, "v1", "Pod", None, pod_gpus)
            ]
            others_visible = False
        gpus = tuple(inventory_of(nodes, pods, namespaces))
        return Inventory(gpus, nodes_visible=True, others_visible=others_visible)


def _live_object_of(kind: str, obj: Mapping[str, Any]) -> LiveObject | None:
    return live_object(obj, kind)


def skipping_failures(extract: Callable[[Mapping[str, Any]], Any], kind: str) -> Callable[[Mapping[str, Any]], Any]:
    """`extract`, logging and skipping an object it fails on: one object the code does not expect (any
    tenant may write its workload namespace) must not fail the observation of every tenant's replicas."""

    def tolerant(obj: Mapping[str, Any]) -> Any:
        try:
            return extract(obj)
        except Exception as error:
            log.error("%s %s skipped: not understood (%s)", kind, _name_of(obj), type(error).__name__)
            return None

    return tolerant


@functools.cache
def _timed_dynamic_client() -> Any:
    """The Kubernetes DynamicClient, its requests that set no timeout of their own (discovery's: /version, /api,
    /apis, each group's resources) given the member's api timeout. Found in review: discovery had none, so a
    member apiserver that accepted and never answered held the cycle of every cluster for good.

    Its discovery is kept in memory only, per client (`MemoryDiscoverer`): by default the client reads and writes
    /tmp/osrcp-<md5 of the server URL>.json, shared by every process on the machine and kept across restarts, so
    a member was "discovered" from whatever answered at that URL before (another cluster, an older apiserver
    version, a test's server on a reused port) without one request to it. A file per client instead piled up
    with each kubeconfig rotation in the chart's 64 MiB /tmp (found in review)."""
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.discovery import LazyDiscoverer

    class MemoryDiscoverer(LazyDiscoverer):
        def _write_cache(self) -> None:
            """Nothing is written: the discovery lives as long as its client (one per member kubeconfig)."""

    class TimedDynamicClient(DynamicClient):
        def __init__(self, client: Any, timeout_seconds: float) -> None:
            self.timeout_seconds = timeout_seconds  # before discovery, which __init__ runs
            # A cache file that can never exist (/dev/null is no directory): nothing is read from disk.
            super().__init__(client, cache_file=NO_DISCOVERY_FILE, discoverer=MemoryDiscoverer)  # type: ignore[no-untyped-call]

        def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
            params.setdefault("_request_timeout", self.timeout_seconds)
            return super().request(method, path, body, **params)

    return TimedDynamicClient


NO_DISCOVERY_FILE = os.path.join(os.devnull, "gridshift-discovery.json")
"""The discovery cache path given to the Kubernetes client: under /dev/null, so it never exists to be read."""


def _plain(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    """The dynamic client's answer as the JSON it came in: a list of 10,000 pods wrapped in its
    ResourceInstance, then turned back into dicts, cost seconds of CPU a cycle."""
    return body


def _message(error: Any) -> str:
    try:
        return str(json.loads(error.body).get("message", ""))
    except (TypeError, ValueError):
        return ""
