"""Request-size classes: which GPU type serves which share of each class (Mélange's bucketed program).

A deployment whose demand is a histogram over prompt x output sizes (snapshot.RequestClass) is not
served best at its mean size: a short chat request costs least on a small GPU, a long prompt on a
large one (Griggs et al., "Mélange", 2024). Per deployment, with

    need_b      requests/s of class b to cover (rate x share x (1 + headroom))
    cap_bt      SLO capacity of one replica of GPU type t serving class b alone (planner.capacity)
    G_t         GPU cost of one replica-hour of type t, where it is cheapest for the deployment
    E_bt        the rest of a replica-hour at capacity on class b (energy, carbon), same place

the routing solves exactly (HiGHS through scipy.optimize.milp)

    min  sum_t G_t n_t + sum_bt E_bt s_bt
    s.t. sum_t cap_bt s_bt = need_b              (every class covered)
         sum_b s_bt <= n_t                        (a replica time-shares the classes routed to it)
         minReplicas <= sum_t n_t <= maxReplicas,  0 <= n_t <= what the inventory holds
         n_t integer, s_bt >= 0                   (s_bt: replicas' worth of type t on class b)

Each GPU type used becomes a *class group*: the slice of every class routed there. The joint
problem (planner.problem) then places each group like a deployment of its own, on any GPU type and
cluster, with the group's capacity on a type blended from the classes' (time shares add up:
1/cap_mix = sum_b x_b / cap_bt for the group's request mix x), so inventory, prices and the other
deployments still decide where its replicas go. The plan routes each class by its groups' shares.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from gridshift.arrays import FloatArray
from gridshift.planner.snapshot import RequestClass

_SHARE_EPSILON = 1e-6
"""Routed shares below this are dropped (a numerical crumb of the LP, not a routing decision)."""


@dataclass(frozen=True)
class ClassShare:
    """The part of one request class a group serves, in requests/s of observed demand."""

    request_class: RequestClass
    requests_per_second: float


@dataclass(frozen=True)
class ClassGroup:
    """The requests the routing sends to one GPU type: a share of each of some classes."""

    home_gpu_type: str
    shares: tuple[ClassShare, ...]
    fraction_of_deployment: float
    """Share of the deployment's requests in this group."""

    @property
    def requests_per_second(self) -> float:
        return math.fsum(s.requests_per_second for s in self.shares)

    def _mean(self, size: str) -> float:
        rate = self.requests_per_second
        if rate <= 0:
            return math.fsum(getattr(s.request_class, size) for s in self.shares) / max(1, len(self.shares))
        return math.fsum(s.requests_per_second * getattr(s.request_class, size) for s in self.shares) / rate

    @property
    def mean_prompt_tokens(self) -> float:
        return self._mean("prompt_tokens")

    @property
    def mean_output_tokens(self) -> float:
        return self._mean("output_tokens")

    @property
    def label(self) -> str:
        return "+".join(s.request_class.name for s in self.shares)


@dataclass(frozen=True)
class ClassOnType:
    """One class on one GPU type where the deployment may run it most cheaply: what the routing weighs."""

    capacity_rps: float
    """SLO capacity of one replica serving this class alone (0: the SLO cannot be met)."""
    gpu_usd_per_hour: float
    rest_usd_per_hour: float
    """Energy (and carbon) of one replica-hour at capacity on this class: the part that scales with load."""
    upper: int
    """Most replicas of this type the deployment may hold (inventory, maxReplicas)."""


@dataclass(frozen=True)
class Mix:
    """A group's request mix on one GPU type: the capacity, power and batch of a replica serving it."""

    capacity_rps: float
    power_watts: float
    batch: float


def normalised(classes: Sequence[RequestClass]) -> tuple[RequestClass, ...]:
    """The classes with shares scaled to add up to 1 (zero-share classes dropped)."""
    total = math.fsum(c.share for c in classes)
    if total <= 0:
        return ()
    return tuple(replace(c, share=c.share / total) for c in classes if c.share > 0)


def mix_on_type(
    shares: Sequence[tuple[float, float, float, float]],
) -> Mix | None:
    """Blend per-class replicas into one serving the mix: `shares` holds, per class, (requests/s
    routed, capacity rps, power W at capacity, batch at capacity) on one GPU type. A replica's time
    goes to each class in proportion to rate / capacity; None when a class with load cannot be served."""
    busy = 0.0
    rate = 0.0
    power = 0.0
    batch = 0.0
    for routed, capacity, watts, seqs in shares:
        if routed <= 0:
            continue
        if capacity <= 0:
            return None
        time = routed / capacity
        busy += time
        rate += routed
        power += time * watts
        batch += time * seqs
    if busy <= 0:
        return None
    return Mix(capacity_rps=rate / busy, power_watts=power / busy, batch=batch / busy)


def route_classes(
    classes: Sequence[RequestClass],
    requests_per_second: float,
    headroom: float,
    on_type: Mapping[str, Sequence[ClassOnType]],
    min_replicas: int,
    max_replicas: int,
) -> tuple[ClassGroup, ...]:
    """Groups of class shares per GPU type, from the exact bucketed program (module docstring).

    `on_type[t][b]` describes class b (in the order of `classes`) on GPU type t. When inventory or
    maxReplicas leave the program infeasible, the inventory bound is dropped (the joint problem then
    reports what does not fit); when even that fails, each class goes whole to its cheapest type per
    request."""
    types = sorted(on_type)
    if not classes or not types:
        return ()
    need = [requests_per_second * c.share * (1.0 + headroom) for c in classes]
    solved = _solve(classes, need, types, on_type, min_replicas, max_replicas, use_inventory=True)
    if solved is None:
        solved = _solve(classes, need, types, on_type, min_replicas, max_replicas, use_inventory=False)
    if solved is None:
        solved = _cheapest_per_request(classes, need, types, on_type)
    groups = []
    for t_index, gpu_type in enumerate(types):
        shares = tuple(
            ClassShare(c, requests_per_second * c.share * solved[b][t_index])
            for b, c in enumerate(classes)
            if solved[b][t_index] > _SHARE_EPSILON
        )
        if shares:
            fraction = math.fsum(c.share * solved[b][t_index] for b, c in enumerate(classes))
            groups.append(ClassGroup(gpu_type, shares, fraction))
    return tuple(groups)


@dataclass(frozen=True)
class BucketedSolution:
    """The bucketed program's optimum (module docstring): replicas per type and the replicas' worth of
    each type on each class, as HiGHS returns them (not rounded)."""

    replicas: FloatArray
    """n_t per GPU type."""
    shares: FloatArray
    """s_bt, rows: classes, columns: GPU types."""
    usd_per_hour: float


def solve_bucketed(
    replica_usd: Sequence[float],
    load_usd: Sequence[Sequence[float]],
    capacity: Sequence[Sequence[float]],
    need: Sequence[float],
    replica_bounds: tuple[Sequence[float], Sequence[float]],
    total_bounds: tuple[float, float],
) -> BucketedSolution | None:
    """The bucketed program of the module docstring, solved exactly by HiGHS (None: no solution).

    Per GPU type t: `replica_usd[t]` (G_t) and the bounds of n_t; per class b: `need[b]` and, per type,
    `load_usd[b][t]` (E_bt) and `capacity[b][t]` (cap_bt; <= 0: the type cannot serve the class).
    `total_bounds` bound the replicas of all types together."""
    n_types, n_classes = len(replica_usd), len(need)
    # Columns: n_t (types), then s_bt (class-major).
    columns = n_types + n_classes * n_types
    cost = np.zeros(columns)
    lower = np.zeros(columns)
    upper = np.full(columns, np.inf)
    integrality = np.zeros(columns)
    for t in range(n_types):
        cost[t] = replica_usd[t]
        lower[t] = replica_bounds[0][t]
        upper[t] = replica_bounds[1][t]
        integrality[t] = 1
    rows = []
    row_lower = []
    row_upper = []
    for b in range(n_classes):
        row = np.zeros(columns)
        for t in range(n_types):
            column = n_types + b * n_types + t
            cost[column] = load_usd[b][t]
            row[column] = capacity[b][t]
            if capacity[b][t] <= 0:
                upper[column] = 0.0
        rows.append(row)
        row_lower.append(need[b])
        row_upper.append(need[b])
    for t in range(n_types):
        row = np.zeros(columns)
        row[t] = -1.0
        row[n_types + t :: n_types] = 1.0
        rows.append(row)
        row_lower.append(-np.inf)
        row_upper.append(0.0)
    total = np.zeros(columns)
    total[:n_types] = 1.0
    rows.append(total)
    row_lower.append(total_bounds[0])
    row_upper.append(total_bounds[1])
    result = milp(
        cost,
        constraints=LinearConstraint(np.vstack(rows), row_lower, row_upper),
        integrality=integrality,
        bounds=Bounds(lower, upper),
        options={"mip_rel_gap": 1e-9},
    )
    if result.x is None or result.status != 0:
        return None
    x = np.asarray(result.x, dtype=np.float64)
    return BucketedSolution(x[:n_types], x[n_types:].reshape(n_classes, n_types), float(result.fun))


def _solve(
    classes: Sequence[RequestClass],
    need: list[float],
    types: list[str],
    on_type: Mapping[str, Sequence[ClassOnType]],
    min_replicas: int,
    max_replicas: int,
    *,
    use_inventory: bool,
) -> list[list[float]] | None:
    """Fractions of each class per type (rows: classes), or None when HiGHS finds no solution."""
    entries = [on_type[t] for t in types]
    # A class the type cannot serve carries no price: the type's price is its servable classes'.
    solution = solve_bucketed(
        [max(e.gpu_usd_per_hour for e in on) for on in entries],
        [[on[b].rest_usd_per_hour for on in entries] for b in range(len(classes))],
        [[on[b].capacity_rps for on in entries] for b in range(len(classes))],
        need,
        (
            [0.0] * len(types),
            [min(max_replicas, min(e.upper for e in on)) if use_inventory else max_replicas for on in entries],
        ),
        (float(min_replicas), float(max_replicas)),
    )
    if solution is None:
        return None
    fractions = []
    for b in range(len(classes)):
        row_fractions = []
        for t, on in enumerate(entries):
            served = float(solution.shares[b, t]) * on[b].capacity_rps
            row_fractions.append(served / need[b] if need[b] > 0 else (1.0 if t == 0 else 0.0))
        fractions.append(row_fractions)
    return fractions


def _cheapest_per_request(
    classes: Sequence[RequestClass],
    need: list[float],
    types: list[str],
    on_type: Mapping[str, Sequence[ClassOnType]],
) -> list[list[float]]:
    fractions = []
    for b in range(len(classes)):

        def per_request(t: int, b: int = b) -> float:
            entry = on_type[types[t]][b]
            if entry.capacity_rps <= 0:
                return math.inf
            return (entry.gpu_usd_per_hour + entry.rest_usd_per_hour) / entry.capacity_rps

        best = min(range(len(types)), key=lambda t: (per_request(t), t))
        fractions.append([1.0 if t == best else 0.0 for t in range(len(types))])
    return fractions


def classes_from_histograms(
    prompt_buckets: Sequence[tuple[float, float]],
    generation_buckets: Sequence[tuple[float, float]],
    *,
    max_classes: int = 6,
    longest_tokens: float | None = None,
) -> tuple[RequestClass, ...]:
    """Request-size classes from vLLM's two token histograms, as (upper edge `le`, cumulative count)
    pairs over a window (`vllm:request_prompt_tokens_bucket`, `vllm:request_generation_tokens_bucket`,
    `sum by (le) (increase(...))`). The histograms are marginals: the joint prompt x output cell is
    taken as the product of the two shares (sizes independent), a bucket's size as the geometric
    middle of its edges, its p95 as its upper edge. The +Inf bucket's upper edge is twice its lower
    one, at most `longest_tokens` (the longest sequence the replicas take, where known:
    service.inputs.longest_sequence, their largest --max-model-len). The `max_classes`
    largest cells stay; the others' requests join the nearest one kept (in log tokens). Empty when no
    request was counted."""
    prompts = _buckets_of(prompt_buckets, longest_tokens)
    outputs = _buckets_of(generation_buckets, longest_tokens)
    if not prompts or not outputs:
        return ()
    cells = [(p_share * o_share, p, o, p_high) for p, p_high, p_share in prompts for o, _, o_share in outputs]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    kept = [list(c) for c in cells[: max(1, max_classes)]]
    for share, prompt, output, _ in cells[len(kept) :]:
        nearest = min(kept, key=lambda k: (math.log(k[1] / prompt) ** 2 + math.log(k[2] / output) ** 2, k[1], k[2]))
        nearest[0] += share
    out: list[RequestClass] = []
    names: set[str] = set()
    for share, prompt, output, high in sorted(kept, key=lambda k: (k[1], k[2])):
        if share <= 0:
            continue
        # Classes are keyed by name: buckets whose middles round alike (1 and 1.41 tokens) get a suffix.
        base = name = f"p{round(prompt)}-o{round(output)}"
        while name in names:
            name = f"{base}-{len(names)}"
        names.add(name)
        out.append(
            RequestClass(
                name=name, prompt_tokens=prompt, output_tokens=output, share=share, prompt_p95_tokens=max(prompt, high)
            )
        )
    return tuple(out)


def merged_histograms(histograms: Sequence[Sequence[tuple[float, float]]]) -> list[tuple[float, float]]:
    """Cumulative histograms ((upper edge, count) pairs) added up on the edges all of them have; empty
    ones are left out. vLLM's token histograms end at each replica's --max-model-len, so clusters'
    edges differ: a count at an edge one histogram lacks would miss that histogram's requests below
    it (found in review: an L4's edges end at 20,000, an H100's at 100,000; summed edge by edge, the
    H100's 30,000-token prompts were in no edge but +Inf, and read as 2x the last edge, 141k tokens).
    Coarsened to the common edges, the sum is cumulative again (+Inf is one of them)."""
    present = [dict(h) for h in histograms if h]
    if not present:
        return []
    common = set.intersection(*(set(h) for h in present))
    return sorted((edge, sum(h[edge] for h in present)) for edge in common)


def _buckets_of(
    cumulative: Sequence[tuple[float, float]], longest: float | None = None
) -> list[tuple[float, float, float]]:
    """(representative size, upper size, share) per non-empty bucket of a cumulative histogram; the
    +Inf bucket's upper size is twice its lower edge, at most `longest` (and never below the edge)."""
    ordered = sorted(cumulative)
    total = ordered[-1][1] if ordered else 0.0
    if total <= 0:
        return []
    found = []
    lower, below = 0.0, 0.0
    for edge, count in ordered:
        inside = max(0.0, count - below)
        if inside > 0:
            upper = edge if math.isfinite(edge) else max(2.0 * lower, 1.0)
            if longest is not None and not math.isfinite(edge):
                # No request is longer than the model takes. Found in review: read as 2 x 100,000, the
                # +Inf bucket made a class of 141k-token prompts, above the model's 131,072, that no
                # replica could serve (capacity 0).
                upper = max(min(upper, longest), lower)
            middle = math.sqrt(max(lower, 1.0) * upper) if lower > 0 else max(upper / 2.0, 1.0)
            found.append((middle, upper, inside / total))
        lower, below = edge if math.isfinite(edge) else lower, max(below, count)
    return found
