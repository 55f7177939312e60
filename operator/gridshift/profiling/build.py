"""From a sweep to a GPUProfile: operating points, the planner's fitted model and how well it fits.

Each concurrency level becomes one `ProfilePoint`: its running batch (the streams the server decoded at once,
at most the requests in flight), mean context, median inter-token latency as the step time, and GPU power
over the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gridshift.api import GPUProfile
from gridshift.planner.profiles import PerformanceModel, ProfilePoint, fit_performance_model
from gridshift.profiling.sweep import LevelMeasurement, SweepResult


@dataclass(frozen=True)
class FitCheck:
    """How far the fitted model's step time is from one measured point."""

    point: ProfilePoint
    predicted_step_ms: float

    @property
    def relative_error(self) -> float:
        return self.predicted_step_ms / self.point.step_time_ms - 1.0


def prefill_rate(levels: Sequence[LevelMeasurement]) -> float:
    """Prompt tokens per second at the lowest concurrency measured, where prefill waits on nothing else."""
    for level in sorted(levels, key=lambda m: m.concurrency):
        if level.stats.prefill_tokens_per_s is not None:
            return level.stats.prefill_tokens_per_s
    raise ValueError("no level saw a first token inside its window: cannot estimate the prefill rate")


def profile_points(levels: Sequence[LevelMeasurement], prefill_tokens_per_s: float) -> list[ProfilePoint]:
    return [
        ProfilePoint(
            # What the server ran, not what the client kept in flight: requests a server queues (vLLM's
            # --max-num-seqs) take no part in the step. Little's law over the tokens counts the decoding
            # streams with the mean gap, stalls included: with the median the batch fell short by the stalls,
            # and the capacity model, which adds them to the median step, would count them twice again.
            batch=max(1, round(level.stats.running_batch)),
            context_tokens=round(level.stats.mean_context_tokens),
            # The median, not the mean: the planner's capacity model adds the stall of a step carrying a
            # prefill chunk on top of the step time (planner.capacity), and the mean already holds those
            # stalls, so they counted twice; the shipped v3 profiles use the median too, the v2 ones a mean (review,
            # December 2026).
            step_time_ms=level.stats.itl_ms_p50,
            power_watts=level.power_watts,
            prefill_tokens_per_s=prefill_tokens_per_s,
        )
        for level in levels
    ]


def check_batch_sizes(levels: Sequence[LevelMeasurement], points: Sequence[ProfilePoint]) -> None:
    """A ValueError saying why, when the points hold fewer than the two batch sizes the planner's model is
    fitted to. Found in review: a server whose limit (vLLM's --max-num-seqs 4) ran batch 4 at concurrency 8
    and 16 was refused with the fit's "points: need at least two distinct batch sizes", which named no cause."""
    batches = sorted({p.batch for p in points})
    if len(batches) >= 2:
        return
    levels_text = ", ".join(str(level.concurrency) for level in levels)
    if len(levels) < 2:
        raise ValueError(
            f"only concurrency {levels_text} was measured: the planner's model needs two batch sizes or more"
        )
    batch = batches[0]
    if batch == 1:
        raise ValueError(
            f"the server ran batch 1 at every level (concurrency {levels_text}): it decoded one sequence at a "
            "time (vLLM's --max-num-seqs 1, or a KV cache that holds one), and the planner's model needs two "
            "batch sizes or more; let the server run more sequences at once"
        )
    below = ",".join(str(level) for level in sorted({1, batch // 2}))
    raise ValueError(
        f"the server ran batch {batch} at every level (concurrency {levels_text}): it decodes about {batch} "
        f"sequences at once (vLLM's --max-num-seqs, or what its KV cache holds), so more concurrency queued "
        f"requests and added no batch size; add concurrency levels below {batch}, e.g. {below}"
    )


def fit_and_check(
    points: Sequence[ProfilePoint],
    *,
    model: str,
    gpu_type: str,
    gpus_per_replica: int,
    idle_power_watts: float | None,
    prefill_tokens_per_s: float,
) -> tuple[PerformanceModel, list[FitCheck]]:
    """The planner's model fitted to the points, and its step time at each point."""
    fitted = fit_performance_model(
        points,
        model=model,
        gpu_type=gpu_type,
        gpus_per_replica=gpus_per_replica,
        idle_power_watts=idle_power_watts,
        prefill_tokens_per_s=prefill_tokens_per_s,
    )
    checks = [FitCheck(p, fitted.step_time_ms(p.batch, p.context_tokens)) for p in points]
    return fitted, checks


def build_gpu_profile(
    result: SweepResult,
    *,
    name: str,
    model: str,
    gpu_type: str,
    gpus_per_replica: int,
    description: str,
    measured_at: datetime,
) -> tuple[GPUProfile, PerformanceModel, list[FitCheck]]:
    """The GPUProfile of a sweep, validated by the API model and checked by fitting the planner's model.

    Raises ValueError naming the problem when the sweep cannot make a profile (too few batch sizes).
    """
    rate = prefill_rate(result.levels)
    points = profile_points(result.levels, rate)
    check_batch_sizes(result.levels, points)
    fitted, checks = fit_and_check(
        points,
        model=model,
        gpu_type=gpu_type,
        gpus_per_replica=gpus_per_replica,
        idle_power_watts=result.idle_power_watts,
        prefill_tokens_per_s=rate,
    )
    spec: dict[str, object] = {
        "model": model,
        "gpuType": gpu_type,
        "gpusPerReplica": gpus_per_replica,
        "prefillTokensPerSecond": round(rate, 1),
        "points": [
            {
                "batch": p.batch,
                "contextTokens": p.context_tokens,
                "stepTimeMs": round(p.step_time_ms, 3),
                "powerWatts": round(p.power_watts, 1),
                "prefillTokensPerSecond": round(rate, 1),
            }
            for p in points
        ],
        "source": {"method": "Measured", "description": description, "measuredAt": measured_at.isoformat()},
    }
    if result.idle_power_watts is not None:
        spec["idlePowerWatts"] = round(result.idle_power_watts, 1)
    profile = GPUProfile.model_validate({"metadata": {"name": name}, "spec": spec})
    return profile, fitted, checks
