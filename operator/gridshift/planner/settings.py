"""Planner settings: every knob with its unit and the reason for its default."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class PlannerSettings:
    """Tunables of the capacity model, the cost model and the optimiser."""

    # --- capacity under SLO -------------------------------------------------------------------
    latency_quantile: float = 0.95
    """Quantile the SLO speaks of (SLOSpec fields are p95)."""

    prefill_chunk_tokens: int = 512
    """Prompt tokens one engine step may prefill alongside decoding (vLLM chunked prefill,
    --max-num-batched-tokens). It bounds the stall a prompt adds to other requests' inter-token
    latency: 512 tokens at the measured H100 prefill rate (~15k tokens/s) is 34 ms, inside common
    50 ms TPOT objectives; vLLM's throughput-oriented defaults (2048-8192) would stall 0.1-0.5 s."""

    prompt_p95_to_mean: float = 3.55
    """p95 prompt length / mean prompt length. Azure LLM conversation trace 2023: 4083 / 1155 = 3.54;
    code trace: 7315 / 2048 = 3.57."""

    prompt_length_scv: float = 0.92
    """Squared coefficient of variation of prompt length (= of prefill service time), for the
    Kingman queueing term. Azure conversation trace: 0.92; code trace: 0.93."""

    arrival_scv: float = 1.0
    """Squared coefficient of variation of request inter-arrival times; 1.0 is Poisson arrivals."""

    # --- switching ----------------------------------------------------------------------------
    cold_start_seconds: float = 180.0
    """Time a new replica holds its GPUs before it serves. The measured floor (weights from local disk
    plus CUDA graph capture, H100, 8 B model) is 18 s; real vLLM replicas with image pull, weight
    download and engine start take 2-5 min, so 3 min."""

    move_penalty_usd: float = 0.10
    """Charged per replica started elsewhere, on top of its cold-start GPU time: the operational risk
    of a move (a failed start, a routing blip). Small so that the cold start dominates."""

    scale_down_band: float = 0.05
    """Dead band on scale-down, a fraction of the demand to cover (demand already with its headroom): a
    deployment whose replicas running now cover its demand keeps at least min(their capacity, demand x
    (1 + band)) where GPUs are left free after every deployment's demand (planner.band), so a replica
    stops only when the rest cover the demand with this margin; scale-up is not delayed. Stateless, the
    planner's form of the HPA's scale-down stabilisation. Found in review: a 5-min mean rate oscillating
    +-2% around a replica boundary, planned every minute, started and stopped 8 replicas in 40 cycles
    (0.2 USD and a 3-minute cold start each). 5%: wider than that few-percent noise of a 5-minute rate
    mean; no more than one replica's share of a deployment of up to 20 replicas, so it holds at most one
    replica there and a real drop still scales down. Price-driven moves go on and take the held replica
    along. Not applied to deployments planned by request class (docs/planner.md, "Scale-down band").
    0: no band."""

    # --- horizon and prices -------------------------------------------------------------------
    max_horizon_hours: float = 168.0
    """Upper bound of the cost window; each deployment's window is its migration.paybackHorizonHours."""

    missing_price_usd_per_kwh: float = 0.10
    """Price assumed for a cluster with no known price at all (and then treated as stale, so it never
    drives a move). 0.10 USD/kWh is near the 2024 median of the markets in shared/data/prices-2024."""

    # --- carbon -------------------------------------------------------------------------------
    missing_carbon_g_per_kwh: float = 820.0
    """Intensity assumed for a cluster without a carbon feed, gCO2eq/kWh: the IPCC AR5 life-cycle
    median of coal power (820), so that a cluster nobody measures never looks cleaner than one that
    is measured (the dirtiest 2024 zone in shared/data/carbon-2024, AU-NSW, averages 500 direct)."""

    carbon_limit_penalty_usd: float = 1e5
    """Objective cost per hour of running the deployment's whole demand on placements that break a
    carbon limit (maxGramsPerKwh, maxGramsPerMillionTokens), charged per replica: the larger of its
    share of the demand and its share of the strongest replica's capacity, at most 1 (a replica of the
    strongest GPU type pays the whole of it at any demand, none pays more however small the demand).
    Far above any real cost and the stale-price penalty, so such placements are left whenever another
    place can serve; a hundredth of shortfall_penalty_usd and at most a tenth of
    bound_violation_penalty_usd per replica, so a deployment keeps serving demand and minReplicas
    where it must rather than drop them."""

    # --- optimiser ----------------------------------------------------------------------------
    time_budget_seconds: float = 10.0
    """Seconds the search may spend improving the plan (gridshift.planner.search). The operator plans
    every 60 s (OperatorSettings.plan_interval_seconds); 10 s leaves the rest of the cycle for
    reading inputs and acting. The planner reads no clock: the caller passes one to make_plan, and
    without it only HiGHS's own time limit enforces the budget."""

    exact_search: bool = True
    """False: greedy only, no HiGHS (a quick plan; the benchmark's --solver greedy and tests)."""

    min_solver_seconds: float = 0.05
    """HiGHS is not started with less time left than this: it could not return a better plan."""

    milp_max_variables: int = 12_000
    """Up to this many MILP columns (about 300 deployments on 12 clusters x 3 GPU types) HiGHS runs
    on the whole problem; above, it re-solves groups of deployments in turn, which improved the plan
    faster at 1,000 deployments (docs/planner.md, "Choosing the method")."""

    whole_problem_share: float = 0.6
    """Share of the time left that HiGHS gets on the whole problem; when it does not prove the plan
    optimal in it, the neighbourhood search has the rest (on a loaded machine HiGHS can spend all
    of a budget without improving a greedy plan that leaves demand unserved)."""

    neighbourhood_deployments: int = 40
    """Deployments per group in the large-neighbourhood search: about the size HiGHS re-solves in a
    fraction of a second on the 2-core CI machine."""

    neighbourhood_seconds: float = 0.5
    """Time limit of HiGHS on one group."""

    neighbourhood_passes: int = 6
    """Passes over all groups (alternating two groupings), while one of the last two improved the
    plan and the budget lasts."""

    greedy_exchange_budget: int = 10_000
    """Candidate single-replica exchanges the greedy solver's last pass may evaluate, over all
    deployments (about 5 microseconds each): enough to be thorough up to a few hundred deployments,
    and bounded at 1,000 and more."""

    mip_relative_gap: float = 1e-6
    """HiGHS relative optimality gap. Tight, so that plans are optimal enough to be monotone in prices."""

    stop_gap: float = 1e-6
    """The search stops once its plan is proven within this share of the plan's cost (USD/h, penalties
    left out of the yardstick, not of the proof) above a valid lower bound: the pool-pricing LP's, or
    HiGHS's on the whole problem or on a neighbourhood (gridshift.planner.search). 1e-6: prove
    optimality, as mip_relative_gap, because small plans must stay optimal (a move that saves less
    than the gap would be skipped: tests/planner/test_hysteresis.py). 0.005 cut the CPU of two
    200-deployment instances only from about 10 s to 5.4 and 7.8 s (issue 13, fourth round): the
    bounds HiGHS proves are 13-17% below the optimum at its root."""

    shortfall_penalty_usd: float = 1e7
    """Objective cost (per hour, like every objective term) of leaving a deployment's whole demand
    unserved; uncovered demand is priced so far above any real cost that capacity is always bought
    when inventory allows it."""

    bound_violation_penalty_usd: float = 1e6
    """Objective cost per hour of each replica or region short of minReplicas or minRegions."""

    stale_change_penalty_usd: float = 1e4
    """Objective cost per hour of each replica added to or removed from a cluster whose price is stale:
    large enough that only an SLO need (priced at shortfall_penalty_usd) makes such a change."""

    preferred_region_discount: float = 1e-3
    """Fraction taken off the cost of options in a deployment's preferredRegions, so they win ties."""

    def without_penalties(self) -> PlannerSettings:
        """These settings with the shortfall, bound-violation and stale-change penalties at 0: the
        objective then reads what a plan costs per hour (search.usd_per_hour, the bench's figures)."""
        return replace(self, shortfall_penalty_usd=0.0, bound_violation_penalty_usd=0.0, stale_change_penalty_usd=0.0)

    def __post_init__(self) -> None:
        if not 0.5 <= self.latency_quantile < 1.0:
            raise ValueError(f"latency_quantile must be within [0.5, 1), got {self.latency_quantile}")
        if self.prefill_chunk_tokens < 1:
            raise ValueError(f"prefill_chunk_tokens must be >= 1, got {self.prefill_chunk_tokens}")
        if self.prompt_p95_to_mean < 1.0:
            raise ValueError(f"prompt_p95_to_mean must be >= 1, got {self.prompt_p95_to_mean}")
        if self.cold_start_seconds < 0:
            raise ValueError(f"cold_start_seconds must be >= 0, got {self.cold_start_seconds}")
        if not 0 <= self.scale_down_band <= 1:
            raise ValueError(f"scale_down_band must be within [0, 1], got {self.scale_down_band}")
        if self.move_penalty_usd < 0:
            raise ValueError(f"move_penalty_usd must be >= 0, got {self.move_penalty_usd}")
        if not self.missing_carbon_g_per_kwh >= 0:
            raise ValueError(f"missing_carbon_g_per_kwh must be >= 0, got {self.missing_carbon_g_per_kwh}")
        if not self.carbon_limit_penalty_usd >= 0:
            raise ValueError(f"carbon_limit_penalty_usd must be >= 0, got {self.carbon_limit_penalty_usd}")
        if self.milp_max_variables < 0:
            raise ValueError(f"milp_max_variables must be >= 0, got {self.milp_max_variables}")
        if not self.time_budget_seconds > 0:
            raise ValueError(f"time_budget_seconds must be > 0, got {self.time_budget_seconds}")
        if not 0 <= self.stop_gap < 1:
            raise ValueError(f"stop_gap must be within [0, 1), got {self.stop_gap}")
        if not 0 < self.whole_problem_share <= 1:
            raise ValueError(f"whole_problem_share must be within (0, 1], got {self.whole_problem_share}")
        if self.neighbourhood_deployments < 1:
            raise ValueError(f"neighbourhood_deployments must be >= 1, got {self.neighbourhood_deployments}")
