"""The pure planning core: SLO capacity, the $/token cost model and joint cross-region placement.

No I/O, no wall clock: a `Snapshot` (deployments, clusters, GPU profiles, price and carbon horizons, now) goes
in, a `Plan` comes out. `make_plan` is the entry point.
"""

from gridshift.planner.plan import CostPrediction, DeploymentPlan, Explanation, Plan, TargetPlacement, make_plan
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.snapshot import (
    CarbonHorizon,
    CarbonIntensity,
    Cluster,
    Deployment,
    EnergyPrice,
    ObservedDemand,
    Offering,
    Placement,
    PriceHorizon,
    Requirements,
    Selector,
    Snapshot,
)

__all__ = [
    "CarbonHorizon",
    "CarbonIntensity",
    "Cluster",
    "CostPrediction",
    "Deployment",
    "DeploymentPlan",
    "EnergyPrice",
    "Explanation",
    "ObservedDemand",
    "Offering",
    "Placement",
    "Plan",
    "PlannerSettings",
    "PriceHorizon",
    "Requirements",
    "Selector",
    "Snapshot",
    "TargetPlacement",
    "make_plan",
]
