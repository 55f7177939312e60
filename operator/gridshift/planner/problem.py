"""Turns a Snapshot into the optimisation problem every solver shares.

An *option* is one (deployment, cluster, GPU type) where a replica may run, with its SLO capacity,
its cost per replica over the deployment's payback window, and the cost of starting one there.
Costs (USD):

    replica cost per hour   = GPUs x marginal GPU-hour cost + P_load x PUE x price / 1000   (planner.cost)
    window cost             = replica cost per hour integrated over the window's hourly prices
    cost of starting one    = cold start hours x (GPUs x GPU-hour cost + idle W x PUE x price now / 1000)
                              + per-move penalty

The objective is in USD per hour: each deployment's window cost and start costs divided by its
window (the mean cost per hour over the payback window, starts amortised over it). Deployments with
different payback windows then compete for a cheap pool on what they save per hour, and the
objective reads as the fleet's cost per hour.

where P_load is the replica's power at its SLO capacity (a replica the optimiser buys carries a full
share of the load when demand binds). Prices are not clamped: a negative price makes energy a
credit. GPUs that gridshift does not hold are not its cost, so no idle power is charged for them.

Carbon (planner.carbon), only for deployments that use it (a carbon price or a carbon limit):

    carbon cost per hour    = P_load x PUE x window mean intensity / 1000 / 1e6 x carbon price
                              (added to the window cost; a start adds its idle draw's at the intensity now)
    carbon limit            = an option that breaks maxGramsPerKwh or maxGramsPerMillionTokens now costs
                              carbon_limit_penalty_usd x min(1, max(its share of the demand, its share
                              of the strongest replica's capacity)) per hour (a replica pays at most the
                              whole penalty, below the minReplicas and shortfall penalties), so replicas
                              leave it whenever another place can serve (make-before-break, like any move)

A deployment without a carbon price or limit gets exactly the options it had before carbon existed.

Request-size classes (planner.classes): a deployment whose demand carries two or more classes is
split into class groups, one DeploymentProblem each (same Deployment id), whose options are
(deployment, class group, cluster, GPU type); the plan merges them back (planner.plan). Variants:
where a deployment allows other builds of its model, each (cluster, GPU type) option takes the build
that serves there at the lowest cost per unit of capacity. A deployment with one class and no
variants gets exactly the options it had before either existed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from gridshift.modes import MigrationMode
from gridshift.planner.capacity import CapacityInputs, batch_at, capacity_requests_per_second, power_at
from gridshift.planner.carbon import CarbonView, carbon_view, limit_broken
from gridshift.planner.classes import ClassGroup, ClassOnType, ClassShare, mix_on_type, normalised, route_classes
from gridshift.planner.cost import carbon_usd_per_hour, grams_co2_per_hour, usd_per_watt_hour
from gridshift.planner.prices import PriceView, view
from gridshift.planner.profiles import PerformanceModel
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.snapshot import (
    Cluster,
    Deployment,
    Offering,
    Placement,
    RequestClass,
    Requirements,
    Snapshot,
)


@dataclass(frozen=True)
class Workload:
    """What a deployment must serve, after filling missing metrics from its spec."""

    requests_per_second: float | None
    mean_prompt_tokens: float
    mean_output_tokens: float
    headroom: float

    @property
    def output_tokens_per_second(self) -> float | None:
        if self.requests_per_second is None:
            return None
        return self.requests_per_second * self.mean_output_tokens

    @property
    def needed_tokens_per_second(self) -> float | None:
        tokens = self.output_tokens_per_second
        return None if tokens is None else tokens * (1.0 + self.headroom)


@dataclass(slots=True)
class Option:
    """One place a replica of one deployment may run."""

    deployment: int
    cluster: str
    region: str
    gpu_type: str
    gpus: int
    capacity_rps: float
    capacity_tokens_per_s: float
    power_at_capacity_watts: float
    pue: float
    gpu_hour_usd: float
    window_cost_usd: float
    hourly_cost_now_usd: float
    start_cost_usd: float
    hourly_usd: float
    """Objective coefficient: window cost / window hours (USD/h of one replica, mean over the window)."""
    start_per_hour_usd: float
    """Objective coefficient: start cost / window hours (a start amortised over the payback window)."""
    current: int
    ready: int
    upper: int
    stale: bool
    preferred: bool
    model: PerformanceModel
    max_num_seqs: int = 1
    """vLLM --max-num-seqs of a replica here: the batch at SLO capacity, at the observed request sizes."""
    key: tuple[str, str] = field(init=False)
    """(cluster, gpu_type): the inventory pool this option draws from (derived in __post_init__)."""
    carbon_usd_per_hour: float = 0.0
    """Internal carbon cost of one replica at SLO capacity, mean over the window (in `hourly_usd`);
    0 for deployments without a carbon price."""
    carbon_limit: str | None = None
    """The carbon limit a replica here breaks now (its penalty is in `hourly_usd`), or None."""
    carbon_penalty_usd: float = 0.0
    """The carbon limit penalty per replica-hour included in `hourly_usd` (not a cost: explanations leave it out)."""
    variant: str = ""
    """The build of the model a replica here runs (a Requirements.variants name); "": the model itself."""
    carbon_stale: bool = False
    """The cluster's carbon feed is stale (a deployment that uses carbon): its carbon terms are held,
    see `carbon_start_per_hour_usd`."""
    carbon_start_per_hour_usd: float = 0.0
    """The carbon part of `start_per_hour_usd` where the carbon feed is stale: a replica started here
    pays the dirtiest intensity of the deployment's sites (its replicas kept pay the cleanest, in
    `carbon_usd_per_hour`), and the penalty of a limit the last known intensity breaks."""
    carbon_limit_on_start: str | None = None
    """Where the carbon feed is stale: the limit the last known figures break, charged on starts only."""

    def __post_init__(self) -> None:
        self.key = (self.cluster, self.gpu_type)


@dataclass(frozen=True)
class OptionColumns:
    """Objective coefficients per option, in USD/h: `window_cost` is the replica's mean cost per hour
    over the window, `start_cost` a start amortised over the window."""

    window_cost: tuple[float, ...]
    start_cost: tuple[float, ...]
    current: tuple[int, ...]
    stale: tuple[bool, ...]
    unit: tuple[float, ...]
    region: tuple[str, ...]


@dataclass
class DeploymentProblem:
    """One deployment's part of the joint problem."""

    index: int
    deployment: Deployment
    workload: Workload
    window_hours: float
    options: list[Option]
    coverage_target: float
    """Demand to cover, in the unit of `Option.capacity_tokens_per_s` (demand unknown: the capacity running
    now, see _unknown_demand_coverage): every solver and the objective read this figure, without the
    scale-down band (band_coverage)."""
    demand_known: bool
    min_replicas: int
    max_replicas: int
    """The cap the optimiser uses: the user's maxReplicas, lowered to a minimal cover (see build_problem)."""
    min_regions: int
    max_moves: int
    frozen: bool
    advisory: bool
    band_coverage: float = 0.0
    """What the scale-down band keeps, same unit (_banded_coverage): at least coverage_target, above it only
    where replicas running now cover the demand with less than the band's margin to spare. No solver reads
    it: the plan keeps replicas for it only on GPUs that the solved plan leaves free (planner.band), so the
    band's margin never takes a GPU from another deployment's demand. 0: no band."""
    user_max_replicas: int = 0
    """spec.capacity.maxReplicas as written: an explanation names it only when the plan reaches it."""
    user_min_regions: int = 0
    """spec.capacity.minRegions as written (min_regions may be lowered to the eligible regions)."""
    unreachable: list[tuple[str, str, int]] = field(default_factory=list)
    away: list[Option] = field(default_factory=list)
    """Of `unreachable`, those whose price is known: each as the option it was while its cluster answered (the
    offering the hub still tells, the feed's price, the profile's power), never searched (no option of the plan),
    only to price the replicas a plan keeps there (plan._cost_prediction). Found in review: they were priced at 0.
    Those without (the cluster offers the GPU type no more, no profile gives their power) are still left out."""
    usable_away: frozenset[str] = frozenset()
    """The clusters of `unreachable` where the deployment may still run those replicas (`_usable_away`)."""
    strays: list[tuple[str, str, int, int]] = field(default_factory=list)
    """(cluster, GPU type, desired, ready) of replicas running where the deployment may no longer run
    (a region forbidden, a cluster that no longer admits it, a GPU type dropped or without profile):
    not options, so the plan scales them to 0, make-before-break (plan._deployment_plan)."""
    stray_capacity: Mapping[str, float] = field(default_factory=dict)
    """Per GPU type of `strays`, a replica's SLO capacity (unit of `Option.capacity_tokens_per_s`) from the
    deployment's profile of that type, where no option of the type is left to give it (a type dropped from
    gpuTypes, or no longer offered); 0.0 where the profile gives none (the SLO, or memory: no option for that
    reason), absent without a profile: status names only the unknown ones (plan._stray_unit)."""
    notes: list[str] = field(default_factory=list)
    aggregate_cache: dict[tuple[int, ...], object] = field(default_factory=dict, repr=False, compare=False)
    """Solver scratch: totals of recently evaluated counts (gridshift.planner.solution.aggregates)."""
    fill_cache: dict[str, object] = field(default_factory=dict, repr=False, compare=False)
    """Solver scratch: the options as arrays for the exact fill (gridshift.planner.fill), built once."""
    group: ClassGroup | None = None
    """The request-class group this problem serves (planner.classes); None: the whole deployment."""
    steady: tuple[int, ...] | None = None
    """Per option, the placement a make-before-break move in flight leaves once its stops are done: the replicas
    desired now less the surge the move started ahead of them (plan._steady_placements, from the previous plan).
    The decision's reason and saving are read against it, not against the surge (review: every later step of a
    paced move read ScaleDown, each saving a whole replica). None: no move in flight, the replicas desired now."""

    @property
    def needs_nothing(self) -> bool:
        """Whether no replica anywhere is a plan that meets the spec: nothing to serve (a known demand of 0, or
        demand unknown with none of its replicas running anywhere, which is all the rule for unknown demand keeps),
        minReplicas 0, and minRegions 1 (more places a replica in each region, demand or not). Such a deployment
        with nowhere it may run is not infeasible (plan._infeasible_reason): found in review, every region
        forbidden and no demand read Infeasible."""
        return _needs_nothing(
            self.deployment, self.min_replicas, self.user_min_regions, self.coverage_target, self.demand_known
        )

    def unit_capacity(self, option: Option) -> float:
        # Tokens/s whether or not demand is known: counting replicas while it is not swapped fast GPUs for
        # slow ones one for one (found in review: 3 H100 for 3 A100, a third of the capacity).
        return option.capacity_tokens_per_s

    @cached_property
    def columns(self) -> OptionColumns:
        """The options' numbers as parallel tuples, for the solvers' inner loops."""
        # One pass over the options (one tuple per option, transposed by zip): at 10,000 deployments
        # this runs for 227,000 options inside the search's budget. `unit` is unit_capacity's rule,
        # inlined for that reason: change both together.
        rows = [
            (
                o.hourly_usd,
                o.start_per_hour_usd,
                o.current,
                o.stale,
                o.capacity_tokens_per_s,
                o.region,
            )
            for o in self.options
        ]
        window_cost, start_cost, current, stale, unit, region = (
            zip(*rows, strict=True) if rows else ((), (), (), (), (), ())
        )
        return OptionColumns(
            window_cost=window_cost,
            start_cost=start_cost,
            current=current,
            stale=stale,
            unit=unit,
            region=region,
        )

    @cached_property
    def strongest_unit(self) -> float:
        """The largest capacity of one replica over the options, in coverage units (1.0 without options)."""
        return max(self.columns.unit, default=1.0)

    @cached_property
    def position(self) -> dict[tuple[str, str], int]:
        """Index of the option drawing from each (cluster, GPU type) pool."""
        return {o.key: j for j, o in enumerate(self.options)}

    @cached_property
    def by_unit_cost(self) -> tuple[int, ...]:
        """Option indices from the cheapest window cost per unit of capacity up, ties by index."""
        columns = self.columns
        return tuple(sorted(range(len(self.options)), key=lambda j: (columns.window_cost[j] / columns.unit[j], j)))

    @property
    def current_total(self) -> int:
        return sum(o.current for o in self.options)

    @cached_property
    def limits_moves(self) -> bool:
        """Whether maxConcurrentMoves can bind: replicas run now and the limit is below any change."""
        return not self.frozen and self.current_total > 0 and self.max_moves < self.max_replicas + self.current_total


@dataclass
class Problem:
    """The joint problem: deployments competing for GPU inventory."""

    deployments: list[DeploymentProblem]
    inventory: dict[tuple[str, str], int]
    price_views: dict[str, PriceView]
    stale_clusters: frozenset[str]
    clusters: Mapping[str, Cluster]
    carbon_views: dict[str, CarbonView] = field(default_factory=dict)
    """Intensity now of each cluster with a carbon feed (for the plan's gCO2 figures)."""

    @property
    def movable(self) -> list[DeploymentProblem]:
        """The deployments a plan may change: not Frozen, with at least one option (in order)."""
        return [d for d in self.deployments if not d.frozen and d.options]

    @cached_property
    def variable_count(self) -> int:
        """Columns of the MILP exactly as gridshift.planner.milp builds it (its test checks the equality)."""
        count = 0
        for problem in self.deployments:
            count += len(problem.options)
            if problem.frozen or not problem.options:
                continue
            limit = problem.limits_moves
            for option in problem.options:
                if option.current > 0:
                    count += 1 + (1 if option.stale or limit else 0)
            count += (1 if problem.coverage_target > 0 else 0) + (1 if problem.min_replicas > 0 else 0)
            if problem.min_regions >= 2:
                count += len({o.region for o in problem.options}) + 1
            count += 1 if limit else 0
        return count


MIN_MEAN_TOKENS = 1.0
"""A request reads and writes at least one token: smaller means (the API admits any above 0) are read as 1.
Found in review: a mean output of 5e-324 tokens made a replica's tokens per hour 0, and the division by it
ended the planning cycle for every deployment."""
MIN_REQUESTS_PER_SECOND = 1e-9
"""A request rate below one request in thirty years is no demand: read as 0 (found in review: 5e-324 req/s
passed `if not rate` and underflowed to 0 tokens per hour, ZeroDivisionError)."""
MIN_WINDOW_HOURS = 1.0 / 60.0
"""The shortest planning window, a minute (no price is finer): a paybackHorizonHours of 1e-10 (the API
admits any above 0) made the window zero seconds long, and the price mean divided by it."""


def window_hours(required: Requirements, settings: PlannerSettings) -> float:
    """The window a deployment's prices and carbon are read over: its paybackHorizonHours, capped at
    max_horizon_hours, at least MIN_WINDOW_HOURS. One definition for build_problem and for planner.reuse,
    which must read the horizons over the very windows build_problem does (found in review: reuse's copy had
    no floor, and a 1e-10 h horizon ended every tenant's planning cycle there, dividing by a zero window)."""
    return max(min(required.payback_horizon_hours, settings.max_horizon_hours), MIN_WINDOW_HOURS)


def workload_of(deployment: Deployment) -> Workload:
    required = deployment.requirements
    observed = deployment.demand
    static = required.static_requests_per_second
    classes = classes_of(deployment)
    mean_prompt = required.mean_prompt_tokens
    mean_output = required.mean_output_tokens
    if classes:
        # The classes' mean sizes stand in for the spec's when nothing measured the means.
        mean_prompt = math.fsum(c.share * c.prompt_tokens for c in classes)
        mean_output = math.fsum(c.share * c.output_tokens for c in classes)
    rate = static if static is not None else observed.requests_per_second
    return Workload(
        requests_per_second=None if rate is None else (rate if rate >= MIN_REQUESTS_PER_SECOND else 0.0),
        mean_prompt_tokens=max(observed.mean_prompt_tokens or mean_prompt, MIN_MEAN_TOKENS),
        mean_output_tokens=max(observed.mean_output_tokens or mean_output, MIN_MEAN_TOKENS),
        headroom=required.headroom,
    )


def classes_of(deployment: Deployment) -> tuple[RequestClass, ...]:
    """The request-size classes the deployment is planned by (measured first, then its spec's), shares
    normalised; empty when there are fewer than two (one class is its mean size)."""
    classes = normalised(deployment.demand.request_classes or deployment.requirements.request_classes)
    return classes if len(classes) >= 2 else ()


def _profile_index(profiles: tuple[PerformanceModel, ...]) -> dict[tuple[str, str, int], PerformanceModel]:
    index: dict[tuple[str, str, int], PerformanceModel] = {}
    for profile in profiles:
        index.setdefault((profile.model, profile.gpu_type, profile.gpus_per_replica), profile)
    return index


def _profile_for(
    profiles: Mapping[tuple[str, str, int], PerformanceModel], required: Requirements, gpu_type: str
) -> PerformanceModel | None:
    """The deployment's profile on a GPU type: the first of its model names a profile carries."""
    for name in required.model_names:
        found = profiles.get((name, gpu_type, required.gpus_per_replica))
        if found is not None:
            return found
    return None


def _eligible_cluster(deployment: Deployment, cluster: Cluster) -> str | None:
    """Why the cluster is out for this deployment, or None when it may be used."""
    required = deployment.requirements
    if cluster.admitted_namespaces is not None and deployment.namespace not in cluster.admitted_namespaces:
        return f"does not admit namespace {deployment.namespace} (tenantNamespaceSelector)"
    if required.allowed_regions and cluster.region not in required.allowed_regions:
        return "not in allowedRegions"
    if cluster.region in required.forbidden_regions:
        return "in forbiddenRegions"
    if required.cluster_selector is not None and not required.cluster_selector.matches(cluster.labels):
        return "does not match clusterSelector"
    if required.member_secrets and not cluster.tenant_workload_namespaces:
        return "shares one workload namespace among tenants, where engine.env valueFrom Secrets are not used"
    return None


@dataclass(frozen=True)
class _Capacity:
    """One replica of a deployment on one GPU type, at its SLO capacity."""

    rate: float
    model: PerformanceModel
    power: float
    batch: float
    batch_limit: int | None = None
    """The largest batch at this workload's sizes (profile and KV memory, CapacityInputs.max_batch)."""
    variant: str = ""

    @cached_property
    def max_num_seqs(self) -> int:
        return max_num_seqs(self.model, self.batch, self.batch_limit)


_Capacities = dict[tuple[int, str], _Capacity]
"""A replica's capacity of the model's own build per (deployment, GPU type)."""
_Alternatives = dict[tuple[int, str], tuple[_Capacity, ...]]
"""The capacities of a replica of each variant's build per (deployment, GPU type)."""


def _capacities(snapshot: Snapshot, workloads: list[Workload], settings: PlannerSettings) -> _Capacities:
    """SLO capacity, power and batch at capacity of every (deployment, GPU type) with a profile, in one pass: the
    GPU types of spec.gpuTypes, and those its replicas run on outside them (a type since dropped: what a stray
    there serves until it is replaced, DeploymentProblem.stray_capacity)."""
    profiles = _profile_index(snapshot.profiles)
    pair_keys: list[tuple[int, str]] = []
    pair_models: list[PerformanceModel] = []
    for d_index, deployment in enumerate(snapshot.deployments):
        for gpu_type in (*deployment.requirements.gpu_types, *_running_outside(deployment)):
            model = _profile_for(profiles, deployment.requirements, gpu_type)
            if model is not None:
                pair_keys.append((d_index, gpu_type))
                pair_models.append(model)
    if not pair_keys:
        return {}
    required = [snapshot.deployments[d].requirements for d, _ in pair_keys]
    inputs = CapacityInputs.of(
        pair_models,
        [workloads[d].mean_prompt_tokens for d, _ in pair_keys],
        [workloads[d].mean_output_tokens for d, _ in pair_keys],
        [r.tpot_slo_ms for r in required],
        [r.ttft_slo_ms for r in required],
    )
    rates = capacity_requests_per_second(inputs, settings)
    batches = batch_at(inputs, rates, settings)
    powers = power_at(pair_models, batches)
    return {
        key: _Capacity(float(rate), model, float(power), float(batch), int(limit))
        for key, rate, model, power, batch, limit in zip(
            pair_keys, rates, pair_models, powers, batches, inputs.max_batch, strict=True
        )
    }


def _running_outside(deployment: Deployment) -> list[str]:
    """The GPU types the deployment's replicas run on outside spec.gpuTypes (a type since dropped), sorted: what
    a stray there serves until it is replaced is read from the profile (DeploymentProblem.stray_capacity)."""
    listed = deployment.requirements.gpu_types
    return sorted({p.gpu_type for p in deployment.placements if p.desired > 0 and p.gpu_type not in listed})


def max_num_seqs(model: PerformanceModel, batch_at_capacity: float, batch_limit: int | None = None) -> int:
    """vLLM --max-num-seqs for a replica: the batch at which the profile still meets the SLO, never above
    `batch_limit` (the KV-memory limit at the workload's sizes) nor the profile's largest batch."""
    limit = model.max_batch if batch_limit is None else min(model.max_batch, batch_limit)
    return max(1, min(limit, math.ceil(batch_at_capacity))) if batch_at_capacity > 0 else 1


@dataclass
class _Site:
    """What one cluster offers one deployment: its prices over the deployment's window."""

    cluster: Cluster
    excluded: str | None
    window_usd_per_watt_hour: float
    now_usd_per_watt_hour: float
    stale: bool
    preferred: bool
    carbon: CarbonView | None = None
    """Set only for deployments that use carbon (Requirements.uses_carbon)."""
    offerings: Mapping[str, Offering] = field(default_factory=dict)
    """The cluster's offerings by GPU type (Cluster.offering, looked up once per site)."""


@dataclass(frozen=True)
class _Scope:
    """What every problem of one deployment is built against: its index, its pricing window (hours),
    each cluster as a site for it, the clusters by name and the settings."""

    d_index: int
    window: float
    sites: list[_Site]
    clusters: Mapping[str, Cluster]
    settings: PlannerSettings
    carbon_range: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """For a deployment that uses carbon: the cleanest and dirtiest window-mean intensity of its sites and
    the dirtiest intensity now (gCO2/kWh), what a cluster with a stale carbon feed is held at."""


def _carbon_now(scope: _Scope, carbon: CarbonView) -> float:
    """The intensity now a start's idle draw pays: the dirtiest of the deployment's sites where the feed is stale."""
    return scope.carbon_range[2] if carbon.stale else carbon.now_g_per_kwh


def _carbon_terms(
    scope: _Scope, site: _Site, capacity: _Capacity, required: Requirements, workload: Workload
) -> tuple[float, float, str | None, str | None]:
    """A replica's carbon cost per hour (kept), what a start adds to it per hour, the limit it breaks
    now, and (stale feed) the limit the last known figures break: zeros and None without carbon."""
    if site.carbon is None:
        return 0.0, 0.0, None, None
    pue, price, power = site.cluster.pue, required.carbon_price_usd_per_tonne, capacity.power
    rate = capacity.rate * workload.mean_output_tokens
    limit = limit_broken(required, site.carbon, power_watts=power, pue=pue, capacity_tokens_per_s=rate)
    if not site.carbon.stale:
        hourly = carbon_usd_per_hour(grams_co2_per_hour(power, pue, site.carbon.window_mean_g_per_kwh), price)
        return hourly, 0.0, limit, None
    # Found in review: a stale carbon feed made the cluster stale for the deployment, so a price spike
    # there moved nothing. Only the carbon terms are held: what runs here counts as clean as the
    # cleanest site, a start here as dirty as the dirtiest, so carbon neither pushes replicas out nor
    # draws them in, and the price still moves them.
    cleanest, dirtiest, _ = scope.carbon_range
    hourly = carbon_usd_per_hour(grams_co2_per_hour(power, pue, cleanest), price)
    start = max(0.0, carbon_usd_per_hour(grams_co2_per_hour(power, pue, dirtiest), price) - hourly)
    # Not enforced on what runs here (stale figures trigger no move), but a replica started where the last
    # known figures break a limit pays its penalty (_charge_carbon_limits); a feed that never answered holds
    # the assumed missing_carbon_g_per_kwh (found in review: skipped as unmeasured, such a cluster met any
    # limit and drew a limit-only deployment in, where one with no feed at all is avoided).
    last_known = replace(site.carbon, stale=False)
    stale_limit = limit_broken(required, last_known, power_watts=power, pue=pue, capacity_tokens_per_s=rate)
    return hourly, start, limit, stale_limit


def _option(
    scope: _Scope,
    site: _Site,
    offering: Offering,
    capacity: _Capacity,
    placed: Placement | None,
    required: Requirements,
    workload: Workload,
) -> Option:
    window, settings = scope.window, scope.settings
    gpus = required.gpus_per_replica
    gpu_hour = offering.hourly_cost_usd
    power = capacity.power
    window_cost = window * (gpus * gpu_hour + power * site.window_usd_per_watt_hour)
    idle_watts = gpus * offering.idle_power_watts
    start_cost = (
        settings.cold_start_seconds / 3600.0 * (gpus * gpu_hour + idle_watts * site.now_usd_per_watt_hour)
        + settings.move_penalty_usd
    )
    carbon_hourly, carbon_start, carbon_limit, stale_limit = _carbon_terms(scope, site, capacity, required, workload)
    if site.carbon is not None:
        idle_carbon = carbon_usd_per_hour(
            grams_co2_per_hour(idle_watts, site.cluster.pue, _carbon_now(scope, site.carbon)),
            required.carbon_price_usd_per_tonne,
        )
        window_cost += window * carbon_hourly
        start_cost += settings.cold_start_seconds / 3600.0 * idle_carbon + window * carbon_start
    if site.preferred:
        # Scale toward zero by the discount whatever the sign, so preference always helps.
        window_cost -= abs(window_cost) * settings.preferred_region_discount
    # Positional, in Option's field order (tests/planner/test_problem_build.py holds each field to its
    # meaning): the dataclass's __init__ binds 24 keywords at about three times the cost of a positional
    # call; at 10,000 deployments (224,580 options) build_problem took 1.38-1.45 CPU-s with them, 0.87-1.15
    # without (docs/planner.md, "Time at scale").
    return Option(
        scope.d_index,  # deployment
        site.cluster.name,  # cluster
        site.cluster.region,  # region
        offering.gpu_type,  # gpu_type
        gpus,  # gpus
        capacity.rate,  # capacity_rps
        capacity.rate * workload.mean_output_tokens,  # capacity_tokens_per_s
        power,  # power_at_capacity_watts
        site.cluster.pue,  # pue
        gpu_hour,  # gpu_hour_usd
        window_cost,  # window_cost_usd
        gpus * gpu_hour + power * site.now_usd_per_watt_hour,  # hourly_cost_now_usd
        start_cost,  # start_cost_usd
        window_cost / window if window > 0 else window_cost,  # hourly_usd
        start_cost / window if window > 0 else start_cost,  # start_per_hour_usd
        placed.desired if placed else 0,  # current
        placed.ready if placed else 0,  # ready
        min(required.max_replicas, offering.available_gpus // gpus),  # upper
        site.stale,  # stale
        site.preferred,  # preferred
        capacity.model,  # model
        capacity.max_num_seqs,  # max_num_seqs
        carbon_hourly,  # carbon_usd_per_hour
        carbon_limit,  # carbon_limit
        0.0,  # carbon_penalty_usd (_charge_carbon_limits adds it)
        capacity.variant,  # variant
        site.carbon is not None and site.carbon.stale,  # carbon_stale
        carbon_start,  # carbon_start_per_hour_usd (_charge_carbon_limits adds a stale limit's penalty)
        stale_limit,  # carbon_limit_on_start
    )


def build_problem(snapshot: Snapshot, settings: PlannerSettings) -> Problem:
    clusters = {c.name: c for c in snapshot.clusters}
    stale = frozenset(
        c.name for c in snapshot.clusters if (h := snapshot.prices.get(c.name)) is None or h.stale or not h.intervals
    )

    # Views per (cluster, window hours): deployments share a handful of windows.
    @functools.cache
    def price_view(cluster: str, hours: float) -> PriceView:
        return view(snapshot.prices.get(cluster), snapshot.now, hours, settings.missing_price_usd_per_kwh)

    @functools.cache
    def intensity_view(cluster: str, hours: float) -> CarbonView:
        return carbon_view(snapshot.carbon.get(cluster), snapshot.now, hours, settings.missing_carbon_g_per_kwh)

    workloads = [workload_of(deployment) for deployment in snapshot.deployments]
    capacity = _capacities(snapshot, workloads, settings)
    extra = _extra_capacities(snapshot, workloads, settings)
    inventory: dict[tuple[str, str], int] = {}
    for site in snapshot.clusters:
        for offered in site.offerings:
            inventory[(site.name, offered.gpu_type)] = offered.available_gpus

    problems: list[DeploymentProblem] = []
    # Deployments alike in what a site reads share one list of sites (read only).
    shared_sites: dict[tuple[object, ...], list[_Site]] = {}
    for d_index, deployment in enumerate(snapshot.deployments):
        required = deployment.requirements
        window = window_hours(required, settings)
        alike = _sites_key(deployment, window)
        sites = shared_sites.get(alike) if alike is not None else None
        if sites is None:
            sites = [
                _site(cluster, deployment, stale, price_view(cluster.name, window), intensity_view, window)
                for cluster in snapshot.clusters
            ]
            if alike is not None:
                shared_sites[alike] = sites
        carbon_range = _carbon_range(sites) if required.uses_carbon else (0.0, 0.0, 0.0)
        scope = _Scope(d_index, window, sites, clusters, settings, carbon_range)
        if _planned_by_class(deployment, workloads[d_index]):
            problems.extend(_class_problems(scope, deployment, workloads[d_index], extra))
            continue
        alternatives = _alternatives(extra, d_index, deployment.requirements, -1)
        problems.append(
            _deployment_problem(scope, deployment, workloads[d_index], capacity, alternatives, settings.scale_down_band)
        )
    # Class groups make more problems than deployments: each problem's index is its position.
    for position, problem in enumerate(problems):
        problem.index = position
        for option in problem.options:
            option.deployment = position
    # Frozen deployments keep what they hold even where inventory has since shrunk; where a start was
    # rolled back (no_growth), none is made again while the service holds it.
    for problem in problems:
        no_growth = problem.deployment.no_growth
        for option in problem.options:
            if problem.frozen:
                option.upper = option.current
            elif option.key in no_growth:
                option.upper = min(option.upper, option.current)
    # GPUs our replicas hold outside every option (strays until stopped, Frozen replicas without an
    # option) are counted in available_gpus like all of ours, but no option uses them: they are not free.
    for key, held in _held_outside_options(problems, clusters).items():
        if key in inventory:
            inventory[key] = max(0, inventory[key] - held)
    frozen_use: dict[tuple[str, str], int] = {}
    for problem in problems:
        if problem.frozen:
            for option in problem.options:
                frozen_use[option.key] = frozen_use.get(option.key, 0) + option.current * option.gpus
    for key, used in frozen_use.items():
        inventory[key] = max(inventory.get(key, 0), used)
    price_views = {c.name: price_view(c.name, 0.0) for c in snapshot.clusters}
    carbon_views = {c.name: intensity_view(c.name, 0.0) for c in snapshot.clusters if c.name in snapshot.carbon}
    return Problem(problems, inventory, price_views, stale, clusters, carbon_views)


def _carbon_range(sites: Sequence[_Site]) -> tuple[float, float, float]:
    """_Scope.carbon_range: over the reachable sites the deployment may use (a stale feed's last known
    intensity included); (0, 0, 0) where none has a carbon view."""
    views = [s.carbon for s in sites if s.carbon is not None and s.excluded is None and s.cluster.reachable]
    if not views:
        return (0.0, 0.0, 0.0)
    means = [v.window_mean_g_per_kwh for v in views]
    return (min(means), max(means), max(v.now_g_per_kwh for v in views))


def _held_outside_options(
    problems: Sequence[DeploymentProblem], clusters: Mapping[str, Cluster]
) -> dict[tuple[str, str], int]:
    """GPUs per pool held by replicas that are no option of their deployment, in reachable clusters:
    strays (held until make-before-break stops them, or longer where the plan keeps them) and a Frozen
    deployment's replicas where it has no option (no profile, the SLO out of reach): all stay running."""
    held: dict[tuple[str, str], int] = {}
    for problem in problems:
        keys = {o.key for o in problem.options}
        gpus = problem.deployment.requirements.gpus_per_replica
        for placed in problem.deployment.placements:
            known = clusters.get(placed.cluster)
            key = (placed.cluster, placed.gpu_type)
            if placed.desired > 0 and known is not None and known.reachable and key not in keys:
                held[key] = held.get(key, 0) + placed.desired * gpus
    return held


def _sites_key(deployment: Deployment, window: float) -> tuple[object, ...] | None:
    """Everything _site reads of a deployment, or None when that is not hashable (a cluster selector)."""
    required = deployment.requirements
    if required.cluster_selector is not None:
        return None
    return (
        window,
        required.uses_carbon,
        deployment.namespace,
        required.allowed_regions,
        required.forbidden_regions,
        required.preferred_regions,
        required.member_secrets,
    )


def _site(
    cluster: Cluster,
    deployment: Deployment,
    stale: frozenset[str],
    prices: PriceView,
    intensity_view: Callable[[str, float], CarbonView],
    window: float,
) -> _Site:
    """What `cluster` offers `deployment` over its window (change _sites_key with what this reads)."""
    required = deployment.requirements
    carbon = intensity_view(cluster.name, window) if required.uses_carbon else None
    return _Site(
        cluster=cluster,
        excluded=_eligible_cluster(deployment, cluster),
        window_usd_per_watt_hour=usd_per_watt_hour(cluster.pue, prices.window_mean_usd_per_kwh),
        now_usd_per_watt_hour=usd_per_watt_hour(cluster.pue, prices.now_usd_per_kwh),
        stale=cluster.name in stale,
        preferred=cluster.region in required.preferred_regions,
        carbon=carbon,
        offerings={o.gpu_type: o for o in cluster.offerings},
    )


_RULED_OUT_SHOWN = 5
"""Clusters named when a deployment has none left to run on (the rest counted)."""


def _options(
    scope: _Scope, deployment: Deployment, workload: Workload, capacity: _Capacities, alternatives: _Alternatives
) -> tuple[list[Option], list[tuple[str, str, int]], list[tuple[str, str, int, int]], list[str]]:
    """Where the deployment's replicas may run, the replicas held in unreachable clusters, those running
    where it may no longer run (DeploymentProblem.strays), and notes on every place ruled out (a cluster
    excluded, a GPU type without profile or unable to meet the SLO)."""
    required = deployment.requirements
    frozen = required.mode == MigrationMode.FROZEN
    current = {(p.cluster, p.gpu_type): p for p in deployment.placements}
    notes: list[str] = []
    unreachable: list[tuple[str, str, int]] = []
    options: list[Option] = []
    missing_profiles: set[str] = set()
    no_capacity: set[str] = set()
    ruled_out: list[str] = []
    d_index = scope.d_index
    for site in scope.sites:
        cluster = site.cluster
        if site.excluded is not None and not frozen and cluster.reachable:
            ruled_out.append(f"{cluster.name} {site.excluded}")
        if not cluster.reachable:
            for gpu_type in required.gpu_types:
                placed = current.get((cluster.name, gpu_type))
                if placed is not None and placed.desired > 0:
                    unreachable.append((cluster.name, gpu_type, placed.desired))
            continue
        for gpu_type in required.gpu_types:
            placed = current.get((cluster.name, gpu_type))
            if (why := _ruled_out(site, gpu_type, frozen)) is not None:
                if placed is not None and placed.desired > 0:
                    notes.append(_stray_note(placed.desired, cluster.name, why, workload, required.min_replicas))
                continue
            offering = site.offerings[gpu_type]
            entry = capacity.get((d_index, gpu_type))
            builds = alternatives.get((d_index, gpu_type), ())
            if builds:
                # Variants: the build that costs least per unit of capacity here.
                candidates = [c for c in (entry, *builds) if c is not None and c.rate > 0.0]
                if candidates:
                    built = [_option(scope, site, offering, c, placed, required, workload) for c in candidates]
                    options.append(min(built, key=lambda o: o.hourly_usd / o.capacity_tokens_per_s))
                    continue
                entry = entry if entry is not None else builds[0]
            if entry is None:
                missing_profiles.add(gpu_type)
                continue
            if entry.rate <= 0.0:
                no_capacity.add(_no_capacity_reason(entry, gpu_type, workload))
                continue
            options.append(_option(scope, site, offering, entry, placed, required, workload))
    for placed in deployment.placements:
        if placed.cluster not in scope.clusters and placed.desired > 0:
            notes.append(f"{placed.desired} replica(s) in unknown cluster {placed.cluster}: not counted")
    if not frozen:
        reachable = {site.cluster.name for site in scope.sites if site.cluster.reachable}
        keys = {o.key for o in options}
        strays = [
            (p.cluster, p.gpu_type, p.desired, p.ready)
            for p in deployment.placements
            if p.desired > 0 and p.cluster in reachable and (p.cluster, p.gpu_type) not in keys
        ]
    else:
        strays = []
    for gpu_type in sorted(missing_profiles):
        notes.append(
            f"no GPUProfile for {required.model_names[0]} on {gpu_type} with {required.gpus_per_replica} GPU(s) "
            "per replica: not used"
        )
    notes.extend(sorted(no_capacity))
    if not options and ruled_out:
        # Nowhere to run: say where not and why (the first few; a fleet may rule out hundreds).
        shown = "; ".join(ruled_out[:_RULED_OUT_SHOWN])
        more = f"; and {len(ruled_out) - _RULED_OUT_SHOWN} more" if len(ruled_out) > _RULED_OUT_SHOWN else ""
        notes.append(f"clusters ruled out: {shown}{more}")
    return options, unreachable, strays, notes


def _away_options(
    scope: _Scope,
    deployment: Deployment,
    workload: Workload,
    unreachable: Sequence[tuple[str, str, int]],
    capacity: _Capacities,
    alternatives: _Alternatives,
) -> list[Option]:
    """DeploymentProblem.away: the replicas of `unreachable` priced as the option they were (the model's own build's
    profile, else the first build with capacity there: which one runs there is not known while it is away)."""
    sites = {site.cluster.name: site for site in scope.sites}
    placed = {(p.cluster, p.gpu_type): p for p in deployment.placements}
    found = []
    for cluster, gpu_type, _ in unreachable:
        site = sites.get(cluster)
        offering = site.offerings.get(gpu_type) if site is not None else None
        entry = _serving_build(capacity, alternatives, (scope.d_index, gpu_type))
        if site is not None and offering is not None and entry is not None:
            found.append(
                _option(scope, site, offering, entry, placed[(cluster, gpu_type)], deployment.requirements, workload)
            )
    return found


def _serving_build(capacity: _Capacities, alternatives: _Alternatives, key: tuple[int, str]) -> _Capacity | None:
    """The first build of the deployment that serves at some rate on the GPU type of `key`: the model's own, else
    a variant's; None where none does."""
    return next((c for c in (capacity.get(key), *alternatives.get(key, ())) if c is not None and c.rate > 0.0), None)


def _stray_note(desired: int, cluster: str, why: str, workload: Workload, min_replicas: int) -> str:
    """What becomes of replicas where the deployment may no longer run: replaced elsewhere first, or, with no
    demand and minReplicas 0, stopped at once, nothing replacing them (plan._replaces_strays)."""
    if workload.needed_tokens_per_second == 0 and min_replicas == 0:
        return f"{desired} replica(s) in {cluster} will be removed (no demand, minReplicas 0): cluster {why}"
    return f"{desired} replica(s) in {cluster} will be removed once replicas elsewhere are Ready: cluster {why}"


def _ruled_out(site: _Site, gpu_type: str, frozen: bool) -> str | None:
    """Why the deployment may not run replicas on `gpu_type` in the site's cluster (reachable or not), or None: the
    cluster's eligibility (`_eligible_cluster`; a Frozen deployment keeps what it has), then its offering."""
    if gpu_type in site.offerings and (site.excluded is None or frozen):
        return None
    return site.excluded or f"offers no {gpu_type}"


def _usable_away(
    scope: _Scope,
    deployment: Deployment,
    unreachable: Sequence[tuple[str, str, int]],
    capacity: _Capacities,
    alternatives: _Alternatives,
) -> frozenset[str]:
    """The unreachable clusters where the deployment may still run its replicas: by the rules that make an option of
    a reachable cluster's (`_ruled_out`; a GPU type of spec.gpuTypes with a build of the model with SLO capacity on
    it), on the GPU types of its replicas known there; where none is known (none listed since the operator started,
    or none runs there), on any GPU type the cluster offers (the cluster's own rules, `_eligible_cluster`: regions,
    tenantNamespaceSelector, clusterSelector, which the hub still tells, and its offerings).
    Only these keep their routing weight for the routing grace (service.migrate): found in review, a region forbidden,
    or a cluster no longer admitting the namespace, while it was away kept its traffic for the whole grace; (fifth
    review) after a restart such a cluster's weight, its pods not measured, was kept into a move; (sixth review)
    replicas on a GPU type removed from spec.gpuTypes counted as none known, so the cluster's own rules kept its
    weight into a move, as did a cluster offering no GPU type of the spec, or none profiled."""
    required = deployment.requirements
    # Every replica known there, on any GPU type (`unreachable` lists only those of spec.gpuTypes).
    held = {p.cluster for p in deployment.placements if p.desired > 0}

    def may_run(site: _Site, gpu_type: str) -> bool:
        return (  # Frozen: no routing changes at all
            _ruled_out(site, gpu_type, frozen=False) is None
            and _serving_build(capacity, alternatives, (scope.d_index, gpu_type)) is not None
        )

    sites = {site.cluster.name: site for site in scope.sites}
    unlisted = frozenset(
        s.cluster.name
        for s in scope.sites
        if not s.cluster.reachable
        and s.cluster.name not in held
        and any(may_run(s, gpu_type) for gpu_type in required.gpu_types)
    )
    return unlisted | frozenset(
        cluster
        for cluster, gpu_type, _ in unreachable
        if (site := sites.get(cluster)) is not None and may_run(site, gpu_type)
    )


def _no_capacity_reason(entry: _Capacity, gpu_type: str, workload: Workload) -> str:
    """Why a GPU type serves this deployment at no rate: its memory (the weights, or one sequence's KV
    cache) or the SLO. Found in review: a model too large for the GPUs was said to miss the SLO, which
    sent users to loosen it."""
    kv = entry.model.kv_memory
    gpus = f"{entry.model.gpus_per_replica} x {gpu_type}"
    if kv is not None and kv.kv_budget_bytes <= 0:
        return f"{gpu_type}: the model's weights do not fit in {gpus} memory: not used"
    if entry.batch_limit == 0:
        context = workload.mean_prompt_tokens + workload.mean_output_tokens
        return f"{gpu_type}: the KV cache of {gpus} holds no sequence of {context:.0f} tokens: not used"
    return f"{gpu_type} cannot meet the SLO even at batch 1 for this workload: not used"


def _deployment_problem(
    scope: _Scope,
    deployment: Deployment,
    workload: Workload,
    capacity: _Capacities,
    alternatives: _Alternatives,
    band: float = 0.0,
    whole: Deployment | None = None,
) -> DeploymentProblem:
    """One deployment's (or class group's) problem; `band`: the scale-down band (_banded_coverage); `whole`: the
    deployment a class group is part of, whose replicas known in a cluster away (all of them, not the group's share)
    decide how `_usable_away` judges that cluster."""
    required = deployment.requirements
    frozen = required.mode == MigrationMode.FROZEN
    options, unreachable, strays, notes = _options(scope, deployment, workload, capacity, alternatives)
    away = _away_options(scope, deployment, workload, unreachable, capacity, alternatives)
    needed = workload.needed_tokens_per_second
    demand_known = needed is not None
    reachable_current = sum(o.current for o in options)
    coverage = _unknown_demand_coverage(options, required.min_replicas, notes) if needed is None else needed
    # Unknown demand already keeps what runs; the band is for a measured or static rate only.
    band_coverage = coverage if needed is None else _banded_coverage(options, needed, band)
    regions = {o.region for o in options}
    min_regions = required.min_regions
    if min_regions > len(regions) and not frozen:
        if min_regions >= 2:
            # Only a spread the user asked for is named: minRegions 1 asks for no spread, and with no region at all
            # the cause is elsewhere (the clusters ruled out, or unreachable: plan._infeasible_reason). Found in
            # review: "minRegions 1 cannot be met" beside 0/0 replicas Ready, covering the demand, and as the
            # reason of an Infeasible whose only cluster was unreachable. (A deployment that needs nothing has
            # minRegions 1: DeploymentProblem.needs_nothing.)
            notes.append(f"minRegions {min_regions} cannot be met: only {len(regions)} eligible region(s) can run it")
        min_regions = len(regions)
    _charge_carbon_limits(options, coverage, notes, scope.settings)
    max_replicas = required.max_replicas
    if options and not frozen:
        weakest = min(o.capacity_tokens_per_s for o in options)
        # No more replicas than a minimal cover needs, so that a negative price does not buy idle
        # replicas; what is held now, plus room to spread over regions without stopping any (a move
        # limit may forbid stopping), stays allowed.
        enough = math.ceil(coverage / weakest - 1e-9) if weakest > 0 else max_replicas
        regions_held = len({o.region for o in options if o.current > 0})
        spread_room = max(0, min_regions - regions_held) if reachable_current > 0 else 0
        max_replicas = min(
            max_replicas, max(required.min_replicas, min_regions, enough, reachable_current) + spread_room
        )
    return DeploymentProblem(
        index=scope.d_index,
        deployment=deployment,
        workload=workload,
        window_hours=scope.window,
        options=options,
        coverage_target=coverage,
        band_coverage=band_coverage,
        demand_known=demand_known,
        min_replicas=required.min_replicas,
        max_replicas=max_replicas,
        min_regions=min_regions,
        max_moves=required.max_concurrent_moves,
        frozen=frozen,
        advisory=required.mode == MigrationMode.ADVISORY,
        user_max_replicas=required.max_replicas,
        user_min_regions=required.min_regions,
        unreachable=unreachable,
        away=away,
        usable_away=_usable_away(scope, whole or deployment, unreachable, capacity, alternatives),
        strays=strays,
        stray_capacity=_stray_capacity(scope.d_index, strays, options, capacity, workload),
        notes=notes,
    )


def _stray_capacity(
    d_index: int,
    strays: Sequence[tuple[str, str, int, int]],
    options: Sequence[Option],
    capacity: _Capacities,
    workload: Workload,
) -> dict[str, float]:
    """DeploymentProblem.stray_capacity: per GPU type of `strays` no option has, a replica's capacity there from the
    model's own build at this workload (`capacity`; a variant's build is not known of a running replica). Found in
    review: such strays counted 0, so status read SLOAtRisk CapacityShort while their Ready replicas served. A
    profile that gives no capacity (the type cannot meet the SLO) is an explicit 0.0, not absent: found in review,
    status named such strays as ones no GPUProfile gives the capacity of, beside an explanation saying the
    type cannot meet the SLO."""
    optioned = {o.gpu_type for o in options}
    out: dict[str, float] = {}
    for _, gpu_type, _, _ in strays:
        entry = capacity.get((d_index, gpu_type))
        if gpu_type not in optioned and entry is not None:
            out[gpu_type] = max(0.0, entry.rate * workload.mean_output_tokens)
    return out


def _needs_nothing(
    deployment: Deployment, min_replicas: int, min_regions: int, coverage: float, demand_known: bool
) -> bool:
    """DeploymentProblem.needs_nothing, from its parts (also before the problem is built)."""
    if min_replicas > 0 or min_regions > 1 or coverage > 0:
        return False
    return demand_known or not any(p.desired > 0 for p in deployment.placements)


def _banded_coverage(options: list[Option], needed: float, band: float) -> float:
    """The coverage to keep for demand `needed` (tokens/s, with headroom) under the scale-down band
    (PlannerSettings.scale_down_band): max(needed, min(running, needed x (1 + band))), `running` the
    capacity of the replicas that run now in the deployment's options. More demand than runs is covered
    at once; a replica stops only when the rest cover the demand with the band's margin, so a rate that
    wobbles a few percent around a replica boundary does not start and stop one every cycle. Kept after the
    search, on GPUs no deployment's demand wants (planner.band). Stateless: the replicas running now are
    the memory, as the HPA's stabilisation window is its."""
    running = sum(o.current * o.capacity_tokens_per_s for o in options)
    return max(needed, min(running, needed * (1.0 + band)))


def _unknown_demand_coverage(options: list[Option], min_replicas: int, notes: list[str]) -> float:
    """What to cover, in tokens/s, while the request rate is unknown: the capacity of the replicas running
    now in reachable clusters, so that a move to another GPU type or cluster brings as much capacity as it
    stops; and, with fewer running, that of minReplicas replicas of the weakest option, which any
    minReplicas replicas cover: as before, minReplicas replicas of whatever costs least."""
    running = sum(o.current * o.capacity_tokens_per_s for o in options)
    running_count = sum(o.current for o in options)
    floor = min_replicas * min((o.capacity_tokens_per_s for o in options), default=0.0)
    if running_count and running >= floor:
        notes.append(
            "demand unknown (no request-rate metric): keeping at least the capacity of the "
            f"{running_count} replica(s) running"
        )
        return running
    notes.append(f"demand unknown (no request-rate metric): keeping at least {min_replicas} replica(s)")
    return floor


def _charge_carbon_limits(options: list[Option], coverage: float, notes: list[str], settings: PlannerSettings) -> None:
    """Add the carbon limit penalty to the objective of every option that breaks a limit now: per
    replica, carbon_limit_penalty_usd times the larger of its share of the demand and its share of the
    strongest replica's capacity, at most 1: a replica of the strongest type pays the whole penalty at
    any demand (far above the stale-price penalty and any real cost), and no replica more than that
    (a tenth of bound_violation_penalty_usd and a hundredth of what leaving the demand unserved costs).

    Where the carbon feed is stale, a limit the last known figures break is charged on each replica
    started there only (Option.carbon_limit_on_start): what runs there stays."""
    broken = [o for o in options if o.carbon_limit is not None or o.carbon_limit_on_start is not None]
    if not broken:
        return
    strongest = max(o.capacity_tokens_per_s for o in options)
    for option in broken:
        unit = option.capacity_tokens_per_s
        share = max(unit / coverage if coverage > 0 else 0.0, unit / strongest if strongest > 0 else 1.0)
        # At most one whole penalty (found in review: at 0.01 req/s unit / coverage made one replica's 1e7 USD/h,
        # the shortfall penalty, so a limit no region met stopped every replica); not less than the strongest
        # replica's share (review of a fix that shared it over the demand: at 15 replicas' worth it fell below
        # the stale-price penalty, and replicas stayed where the limit is broken).
        penalty = settings.carbon_limit_penalty_usd * min(share, 1.0)
        if option.carbon_limit is None:
            option.carbon_start_per_hour_usd += penalty
            option.start_per_hour_usd += penalty
            notes.append(
                f"{option.cluster}/{option.gpu_type}: its carbon feed is stale and the last known figures break a "
                f"carbon limit ({option.carbon_limit_on_start}): what runs there stays, a replica started there pays "
                "its penalty"
            )
            continue
        option.carbon_penalty_usd = penalty
        option.hourly_usd += penalty
        # Whether the plan avoids it is known only once planned: the explanation's binding constraints say
        # (found in review: "avoided" here, also for replicas the plan then placed there).
        notes.append(f"{option.cluster}/{option.gpu_type} breaks a carbon limit now ({option.carbon_limit})")


def _builds(
    profiles: Mapping[tuple[str, str, int], PerformanceModel], required: Requirements, gpu_type: str
) -> list[tuple[str, PerformanceModel]]:
    """The builds of the model with a profile on a GPU type: ("", the model's own) then each variant."""
    found: list[tuple[str, PerformanceModel]] = []
    base = _profile_for(profiles, required, gpu_type)
    if base is not None:
        found.append(("", base))
    for variant in required.variants:
        for name in variant.model_names:
            model = profiles.get((name, gpu_type, required.gpus_per_replica))
            if model is not None:
                found.append((variant.name, model))
                break
    return found


def _planned_by_class(deployment: Deployment, workload: Workload) -> bool:
    """Whether the deployment is split into class groups: two or more classes and a known, positive
    rate (with unknown demand there is nothing to route), and not Frozen (its placement stays whole)."""
    rate = workload.requests_per_second
    return (
        bool(classes_of(deployment))
        and rate is not None
        and rate > 0
        and deployment.requirements.mode != MigrationMode.FROZEN
    )


ExtraKey = tuple[int, str, str, int]
"""(deployment, GPU type, variant, class): class -1 is the deployment's mean workload."""


def _extra_capacities(
    snapshot: Snapshot, workloads: list[Workload], settings: PlannerSettings
) -> dict[ExtraKey, _Capacity]:
    """SLO capacity of the variants at the mean workload, and of every build on every request class,
    in one vectorised pass (deployments with neither have none)."""
    profiles = _profile_index(snapshot.profiles)
    keys: list[ExtraKey] = []
    models: list[PerformanceModel] = []
    sizes: list[tuple[float, float]] = []
    tails: list[tuple[float, float]] = []
    """(p95 prompt, dispersion of the prompt work) per pair."""
    slos: list[Requirements] = []
    for d_index, deployment in enumerate(snapshot.deployments):
        required = deployment.requirements
        by_class = _planned_by_class(deployment, workloads[d_index])
        if not by_class and not required.variants:
            continue
        classes = classes_of(deployment) if by_class else ()
        # A class-planned deployment's strays on a GPU type dropped from gpuTypes: the model's own build on each
        # class, for the group holding them (_group_capacities; a variant's build is not known of a running replica).
        dropped = _running_outside(deployment) if by_class else []
        for gpu_type in (*required.gpu_types, *dropped):
            for variant, model in _builds(profiles, required, gpu_type):
                if variant and gpu_type in dropped:
                    continue
                wanted: list[tuple[int, float, float, float, float]] = [
                    (
                        b,
                        c.prompt_tokens,
                        c.output_tokens,
                        c.prompt_p95_tokens or c.prompt_tokens,
                        settings.arrival_scv
                        + (c.prompt_scv if c.prompt_scv is not None else settings.prompt_length_scv),
                    )
                    for b, c in enumerate(classes)
                ]
                if not by_class and variant:
                    mean = workloads[d_index]
                    wanted = [
                        (
                            -1,
                            mean.mean_prompt_tokens,
                            mean.mean_output_tokens,
                            mean.mean_prompt_tokens * settings.prompt_p95_to_mean,
                            settings.arrival_scv + settings.prompt_length_scv,
                        )
                    ]
                for b, prompt, output, p95, dispersion in wanted:
                    keys.append((d_index, gpu_type, variant, b))
                    models.append(model)
                    sizes.append((prompt, output))
                    tails.append((p95, dispersion))
                    slos.append(required)
    if not keys:
        return {}
    inputs = CapacityInputs.of(
        models,
        [p for p, _ in sizes],
        [o for _, o in sizes],
        [r.tpot_slo_ms for r in slos],
        [r.ttft_slo_ms for r in slos],
        [p for p, _ in tails],
        [w for _, w in tails],
    )
    rates = capacity_requests_per_second(inputs, settings)
    batches = batch_at(inputs, rates, settings)
    powers = power_at(models, batches)
    return {
        key: _Capacity(float(rate), model, float(power), float(batch), int(limit), variant=key[2])
        for key, rate, model, power, batch, limit in zip(
            keys, rates, models, powers, batches, inputs.max_batch, strict=True
        )
    }


def _alternatives(
    extra: Mapping[ExtraKey, _Capacity], d_index: int, required: Requirements, class_index: int
) -> _Alternatives:
    found: _Alternatives = {}
    for gpu_type in required.gpu_types:
        builds = tuple(
            entry
            for variant in required.variants
            if (entry := extra.get((d_index, gpu_type, variant.name, class_index))) is not None
        )
        if builds:
            found[(d_index, gpu_type)] = builds
    return found


def _class_on_type(
    scope: _Scope, deployment: Deployment, classes: tuple[RequestClass, ...], extra: Mapping[ExtraKey, _Capacity]
) -> dict[str, list[ClassOnType]]:
    """What routing a class to each GPU type costs, where that type is cheapest for the deployment."""
    required = deployment.requirements
    builds = ["", *(v.name for v in required.variants)]
    on_type: dict[str, list[ClassOnType]] = {}
    for gpu_type in required.gpu_types:
        best: tuple[float, list[ClassOnType]] | None = None
        upper = 0
        for site in scope.sites:
            offering = site.cluster.offering(gpu_type)
            if offering is None or site.excluded is not None or not site.cluster.reachable:
                continue
            upper += offering.available_gpus // required.gpus_per_replica
            entries: list[ClassOnType] = []
            per_request = 0.0
            for b, request_class in enumerate(classes):
                workload = Workload(None, request_class.prompt_tokens, request_class.output_tokens, 0.0)
                priced = [
                    _option(scope, site, offering, entry, None, required, workload)
                    for variant in builds
                    if (entry := extra.get((scope.d_index, gpu_type, variant, b))) is not None and entry.rate > 0
                ]
                if not priced:
                    entries.append(ClassOnType(0.0, 0.0, 0.0, 0))
                    per_request = math.inf
                    continue
                option = min(priced, key=lambda o: o.hourly_usd / o.capacity_rps)
                gpu_cost = option.gpus * option.gpu_hour_usd
                entries.append(ClassOnType(option.capacity_rps, gpu_cost, option.hourly_usd - gpu_cost, 0))
                per_request += request_class.share * option.hourly_usd / option.capacity_rps
            if any(e.capacity_rps > 0 for e in entries) and (best is None or per_request < best[0]):
                best = (per_request, entries)
        if best is not None:
            on_type[gpu_type] = [
                ClassOnType(e.capacity_rps, e.gpu_usd_per_hour, e.rest_usd_per_hour, min(upper, required.max_replicas))
                for e in best[1]
            ]
    return on_type


def _group_capacities(
    d_index: int,
    required: Requirements,
    group: ClassGroup,
    classes: tuple[RequestClass, ...],
    extra: Mapping[ExtraKey, _Capacity],
    dropped: Sequence[str] = (),
) -> tuple[_Capacities, _Alternatives]:
    """A group's replica on each GPU type, per build: the model's own, and the variants'; and the model's own on
    the GPU types its replicas run on outside gpuTypes (`dropped`, _running_outside: DeploymentProblem.stray_capacity,
    the group's mix as on a listed type). Found in review: listed types only, so a class-planned deployment's strays
    on a dropped type counted 0 and CapacityShort claimed no GPUProfile gave their capacity while one did."""
    routed = {share.request_class.name: share.requests_per_second for share in group.shares}
    own: _Capacities = {}
    alternatives: _Alternatives = {}
    for gpu_type in (*required.gpu_types, *dropped):
        others: list[_Capacity] = []
        for variant in ["", *(v.name for v in required.variants)]:
            entries = [extra.get((d_index, gpu_type, variant, b)) for b in range(len(classes))]
            present = [e for e in entries if e is not None]
            if not present:
                continue
            mix = mix_on_type(
                [
                    (routed.get(c.name, 0.0), e.rate, e.power, e.batch) if e is not None else (1.0, 0.0, 0.0, 0.0)
                    for c, e in zip(classes, entries, strict=True)
                    if routed.get(c.name, 0.0) > 0
                ]
            )
            model = present[0].model
            blended = (
                _Capacity(
                    mix.capacity_rps,
                    model,
                    mix.power_watts,
                    mix.batch,
                    _blended_limit(classes, entries, routed),
                    variant=variant,
                )
                if mix is not None
                else _Capacity(0.0, model, model.idle_power_watts, 0.0, variant=variant)
            )
            if variant:
                others.append(blended)
            else:
                own[(d_index, gpu_type)] = blended
        if others:
            alternatives[(d_index, gpu_type)] = tuple(others)
    return own, alternatives


def _blended_limit(
    classes: tuple[RequestClass, ...], entries: list[_Capacity | None], routed: Mapping[str, float]
) -> int | None:
    """A mix's batch limit (KV memory at its sizes): the classes' limits weighted by the replica time
    each takes, as the mix's batch is (planner.classes.mix_on_type)."""
    busy = limit = 0.0
    for request_class, entry in zip(classes, entries, strict=True):
        rate = routed.get(request_class.name, 0.0)
        if entry is None or rate <= 0 or entry.rate <= 0 or entry.batch_limit is None:
            continue
        busy += rate / entry.rate
        limit += rate / entry.rate * entry.batch_limit
    return max(1, int(limit / busy)) if busy > 0 else None


def _class_problems(
    scope: _Scope, deployment: Deployment, workload: Workload, extra: Mapping[ExtraKey, _Capacity]
) -> list[DeploymentProblem]:
    """One problem per class group (planner.classes), the largest first; it carries minReplicas and
    minRegions, and holds the replicas running now on GPU types no other group calls home."""
    required = deployment.requirements
    classes = classes_of(deployment)
    rate = workload.requests_per_second or 0.0
    on_type = _class_on_type(scope, deployment, classes, extra)
    groups = route_classes(classes, rate, required.headroom, on_type, required.min_replicas, required.max_replicas)
    if not groups:
        home = required.gpu_types[0] if required.gpu_types else ""
        groups = (ClassGroup(home, tuple(ClassShare(c, rate * c.share) for c in classes), 1.0),)
    groups = tuple(sorted(groups, key=lambda g: (-g.requests_per_second, g.home_gpu_type)))
    estimates = [_replicas_needed(g, classes, on_type, required.headroom) for g in groups]
    caps = _group_caps(estimates, required.max_replicas)
    homes = {g.home_gpu_type for g in groups}
    problems = []
    for position, group in enumerate(groups):
        main = position == 0
        placements = tuple(
            p for p in deployment.placements if p.gpu_type == group.home_gpu_type or (main and p.gpu_type not in homes)
        )
        part = replace(
            deployment,
            requirements=replace(
                required,
                min_replicas=required.min_replicas if main else 0,
                min_regions=required.min_regions if main else min(1, required.min_regions),
                max_replicas=caps[position],
            ),
            placements=placements,
        )
        group_workload = Workload(
            rate * group.fraction_of_deployment, group.mean_prompt_tokens, group.mean_output_tokens, required.headroom
        )
        own, alternatives = _group_capacities(
            scope.d_index, required, group, classes, extra, _running_outside(deployment) if main else ()
        )
        # No scale-down band for class groups: a group's running replicas are those of its home GPU type, which
        # the routing may hand to another group, so a band on them bought other types' replicas to keep their
        # capacity (tests/planner/test_classes.py, 9 H100 running: 2 A100 started beside 7 H100).
        problem = _deployment_problem(scope, part, group_workload, own, alternatives, whole=deployment)
        problem.group = group
        problem.user_max_replicas = required.max_replicas
        problems.append(problem)
    return problems


def _group_caps(estimates: list[int], max_replicas: int) -> list[int]:
    """Each group's maxReplicas, together at most the deployment's: each group gets what it needs (at
    least 1, the largest groups first while the cap lasts), and what is left is shared in proportion
    to the needs (largest remainders), so that a group may grow past its estimate. Each group's cap
    used to be maxReplicas less the others' estimates, at least 1: together they could pass it (found
    in review: maxReplicas 1, two groups, 2 replicas planned)."""
    caps = []
    left = max_replicas
    for needed in estimates:
        cap = min(max(1, needed), left)
        caps.append(cap)
        left -= cap
    weights = [max(1, needed) for needed in estimates]
    total = sum(weights)
    shares = [left * w / total for w in weights]
    extra = [int(share) for share in shares]
    order = sorted(range(len(shares)), key=lambda i: (extra[i] - shares[i], i))
    for i in order[: left - sum(extra)]:
        extra[i] += 1
    return [cap + more for cap, more in zip(caps, extra, strict=True)]


def _replicas_needed(
    group: ClassGroup, classes: tuple[RequestClass, ...], on_type: Mapping[str, list[ClassOnType]], headroom: float
) -> int:
    """Replicas of its home type the group needs (the routing's n_t), for the other groups' caps."""
    entries = on_type.get(group.home_gpu_type)
    if entries is None:
        return 0
    index = {c.name: b for b, c in enumerate(classes)}
    busy = 0.0
    for share in group.shares:
        capacity = entries[index[share.request_class.name]].capacity_rps
        if capacity > 0:
            busy += share.requests_per_second * (1.0 + headroom) / capacity
    return math.ceil(busy - 1e-9)
