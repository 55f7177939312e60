"""The measured-traffic p95 TPOT (planner.capacity._decode_tpot) against the module docstring's model.

A decoding sequence's step is a + X_own + the X of Poisson(B) others (M/G/inf; X = b x context + c per
sequence, context = its prompt + O/2), plus a stall when the step carries prefill: a full chunk (C / R), the
last partial chunk of a channel busy period (one per period, lam (1 - rho) per second, holding a prompt's
remainder), or none. The share of steps carrying a chunk is that of the time the channel is busy as the
sequence decodes: rho, plus the excess rho E[S] (1 - c_s^2) / 2 of work a sequence leaves behind it (M/G/1),
spent in its first O s seconds. These tests work that model out by hand (scalar arithmetic, an exact Poisson
sum, a root finder instead of the bisection) or check the properties it must have: limits, pairs that do not
see each other, no time scale of its own. _decode_tpot takes rho, E[S], the step and the batch as given; the
points here derive them from a chosen rate and batch as _latency does (E[S] = mean P (s / C + 1 / R)).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace

import numpy as np
import pytest
from scipy import optimize, stats

from gridshift.planner.capacity import (
    DISPERSION_WINDOWS_S,
    PROMPT_QUANTILE_POINTS,
    CapacityInputs,
    TrafficShape,
    _decode_tpot,
    operating_point,
)
from gridshift.planner.profiles import PerformanceModel
from gridshift.planner.settings import PlannerSettings

SETTINGS = PlannerSettings()
CHUNK = float(SETTINGS.prefill_chunk_tokens)  # 512 prompt tokens per step
SHARE = 1.0 - SETTINGS.latency_quantile  # p95: the TPOT exceeded by 5 % of intervals
Z95 = float(stats.norm.ppf(SETTINGS.latency_quantile))

# Round numbers: a step of 10 ms + 2e-3 ms per KV position + 0.1 ms per sequence; prefill 20,000 tokens/s, so a
# full chunk stalls a step by 512 / 20,000 = 25.6 ms.
MODEL = PerformanceModel(
    model="tpot-round-numbers",
    gpu_type="test-gpu",
    gpus_per_replica=1,
    step_base_ms=10.0,
    step_ms_per_kv_position=2e-3,
    step_ms_per_sequence=0.1,
    power_base_watts=300.0,
    power_watts_per_sequence=2.0,
    power_watts_per_log_batch=10.0,
    power_cap_watts=700.0,
    idle_power_watts=100.0,
    prefill_tokens_per_s=20000.0,
    max_batch=512,
)
SPREAD = 64.0 * np.arange(3, 3 + PROMPT_QUANTILE_POINTS)
"""Prompts of 192 to 2,688 tokens (mean 1,440, c_s^2 0.26): five are whole chunks (512, 1,024, ... 2,560), the
others end in a partial chunk of 64 to 448 tokens."""


@dataclass(frozen=True)
class Point:
    """One pair's inputs to _decode_tpot: a rate and a batch, the rest derived as _latency derives them."""

    prompts: tuple[float, ...]
    output: float
    rate: float
    batch: float
    model: PerformanceModel = MODEL

    @property
    def per_sequence_s(self) -> float:
        """g = b x (mean prompt + O/2) + c: the mean X, in seconds."""
        context = statistics.fmean(self.prompts) + self.output / 2.0
        return (self.model.step_ms_per_kv_position * context + self.model.step_ms_per_sequence) / 1000.0

    @property
    def step_s(self) -> float:
        return self.model.step_base_ms / 1000.0 + self.per_sequence_s * self.batch

    @property
    def mean_service_s(self) -> float:
        return statistics.fmean(self.prompts) * (self.step_s / CHUNK + 1.0 / self.model.prefill_tokens_per_s)

    @property
    def rho(self) -> float:
        return self.rate * self.mean_service_s

    def scaled_in_time(self, k: float) -> Point:
        """The same point with every duration k times as long (and every rate k times slower)."""
        model = replace(
            self.model,
            step_base_ms=self.model.step_base_ms * k,
            step_ms_per_kv_position=self.model.step_ms_per_kv_position * k,
            step_ms_per_sequence=self.model.step_ms_per_sequence * k,
            prefill_tokens_per_s=self.model.prefill_tokens_per_s / k,
        )
        return replace(self, model=model, rate=self.rate / k)


def tpot_s(points: list[Point]) -> list[float]:
    """_decode_tpot of the points, evaluated together (one array entry per point)."""
    inputs = CapacityInputs.of(
        [p.model for p in points],
        [statistics.fmean(p.prompts) for p in points],
        [p.output for p in points],
        [50.0] * len(points),
        [1000.0] * len(points),
        traffic=[
            TrafficShape(
                prompt_quantiles=np.asarray(p.prompts),
                dispersion_curve=np.ones(len(DISPERSION_WINDOWS_S)),
                rate=1.0,
            )
            for p in points
        ],
    )

    def column(values: list[float]) -> np.ndarray:
        return np.asarray(values, dtype=np.float64)

    result = _decode_tpot(
        inputs,
        column([p.rate for p in points]),
        column([p.rho for p in points]),
        column([p.mean_service_s for p in points]),
        column([p.step_s for p in points]),
        column([p.batch for p in points]),
        np.ones(len(points), dtype=bool),
        SHARE,
        CHUNK,
        column([1.0 / p.model.prefill_tokens_per_s for p in points]),
    )
    return [float(v) for v in result]


def stall_levels(p: Point) -> list[tuple[float, float]]:
    """(stall seconds, share of a sequence's steps) for no chunk, a full chunk and each partial one, by hand."""
    rate, rho, s = p.rate, p.rho, p.step_s
    per_token_s = 1.0 / p.model.prefill_tokens_per_s
    mean_prompt = statistics.fmean(p.prompts)
    # What the last chunk of each prompt holds: the rest over whole chunks, a whole chunk when nothing is left.
    remainders = sorted(prompt % CHUNK or CHUNK for prompt in p.prompts)
    partial_per_s = rate * (1.0 - rho)  # one partial chunk per channel busy period
    full_per_s = (rate * mean_prompt - partial_per_s * statistics.fmean(remainders)) / CHUNK
    partial = partial_per_s / (full_per_s + partial_per_s)
    mean_chunk = rate * mean_prompt / (full_per_s + partial_per_s)  # prompt tokens per chunk-carrying step
    # The channel is busy a share rho of the time, and for the excess rho E[S] (1 - c_s^2) / 2 a sequence leaves
    # behind it over its first O s seconds.
    scv = statistics.pvariance(p.prompts) / mean_prompt**2
    busy = min(rho + rho * p.mean_service_s * (1.0 - scv) / 2.0 / (p.output * s), 1.0)
    # Busy, steps carry a chunk and take s + mean_chunk / R each; idle, they take s.
    with_chunk = busy / (s + mean_chunk * per_token_s)
    carried = with_chunk / (with_chunk + (1.0 - busy) / s)
    # The partial chunk's stall: the sorted remainders in 8 groups of 5 (capacity._REMAINDER_GROUPS), each its mean.
    groups = [statistics.fmean(remainders[g : g + 5]) for g in range(0, len(remainders), 5)]
    return [(0.0, 1.0 - carried), (CHUNK * per_token_s, carried * (1.0 - partial))] + [
        (r * per_token_s, carried * partial / len(groups)) for r in groups
    ]


def tail_by_hand(p: Point, levels: list[tuple[float, float]], t: float) -> float:
    """P(TPOT > t): the stall levels over the Poisson(B) others, each step normal with mean a + (1 + n) E[X] and
    variance (1 + n) Var[X] (n capped by max_batch - 1), summed over every n that carries probability."""
    x = [
        (p.model.step_ms_per_kv_position * (prompt + p.output / 2.0) + p.model.step_ms_per_sequence) / 1000.0
        for prompt in p.prompts
    ]
    x_mean, x_sd = statistics.fmean(x), statistics.pstdev(x)
    total = 0.0
    for n in range(int(p.batch + 40.0 * math.sqrt(p.batch) + 40.0)):
        sequences = min(1 + n, p.model.max_batch)
        mean = p.model.step_base_ms / 1000.0 + sequences * x_mean
        sd = math.sqrt(sequences) * x_sd
        # P(normal > t) = erfc(z / sqrt 2) / 2
        over = sum(share * math.erfc((t - mean - stall) / sd / math.sqrt(2.0)) / 2.0 for stall, share in levels)
        total += float(stats.poisson.pmf(n, p.batch)) * over
    return total


# Two points where 15 to 21 % of a sequence's steps carry a chunk, over a spread of prompts with partial and whole
# last chunks: the stall levels straddle the p95, so it moves with each share (partial chunk, full chunk, none),
# each stall, the count of others and the step's spread.
BUSY = Point(prompts=tuple(SPREAD), output=20.0, rate=2.0, batch=6.0)
LONG_DECODES = Point(prompts=tuple(SPREAD * 0.7), output=300.0, rate=1.0, batch=25.0)


@pytest.mark.parametrize("point", [BUSY, LONG_DECODES], ids=["short-outputs", "long-outputs"])
def test_the_p95_is_where_the_stall_mixture_worked_by_hand_leaves_5_percent(point: Point) -> None:
    """The p95 solves P(TPOT > t) = 5 % for the mixture of the module docstring, worked out above one scalar at a
    time and solved with a root finder (the model bisects 32 times: 1e-8 is far above its precision)."""
    levels = stall_levels(point)
    assert sum(share for _, share in levels) == pytest.approx(1.0)
    assert 0.1 < 1.0 - levels[0][1] < 0.5  # a chunk on a good share of steps: the p95 lies among the stalls
    expected = optimize.brentq(lambda t: tail_by_hand(point, levels, t) - SHARE, 0.0, 1.0, xtol=1e-15)
    assert tpot_s([point])[0] == pytest.approx(expected, rel=1e-8)


def test_a_whole_chunk_prompt_ends_in_a_full_chunk_not_an_empty_one() -> None:
    """Prompts of exactly 2 chunks: every chunk-carrying step stalls by a full 25.6 ms (no partial chunk is
    shorter), so the TPOT is two-valued per count of others, and with B = 0 (a sequence alone) the p95 is the
    stall's level once more than 5 % of steps carry one."""
    alone = Point(prompts=(1024.0,) * PROMPT_QUANTILE_POINTS, output=20.0, rate=2.0, batch=0.0)
    levels = stall_levels(alone)
    assert {stall for stall, share in levels[1:]} == {0.0256}
    assert 1.0 - levels[0][1] > SHARE
    one_sequence = (10.0 + 2e-3 * (1024.0 + 10.0) + 0.1) / 1000.0
    assert tpot_s([alone])[0] == pytest.approx(one_sequence + 0.0256, rel=1e-9)


def test_without_prefill_the_p95_is_the_poisson_quantile_of_the_batch() -> None:
    """No prompt arriving (rate 0) and every sequence alike (one prompt length: X has no spread): the step is
    a + (1 + N) X with N ~ Poisson(B), so its p95 is a + (1 + the Poisson's 95th percentile) X, for a batch of
    400 too (a small model on an H100 runs 512), where the count spreads +-20 around it."""
    for batch in (3.0, 40.0, 400.0):
        point = Point(prompts=(1000.0,) * PROMPT_QUANTILE_POINTS, output=200.0, rate=0.0, batch=batch)
        x = (2e-3 * 1100.0 + 0.1) / 1000.0
        others = float(stats.poisson.ppf(SETTINGS.latency_quantile, batch))
        assert tpot_s([point])[0] == pytest.approx(0.010 + (1.0 + others) * x, rel=1e-9), batch


def test_a_replica_that_holds_one_sequence_steps_it_alone_with_its_spread() -> None:
    """max_batch 1 (a KV cache that holds one sequence at this length): however many wait, a step carries one
    sequence, normal about a + E[X] with Var[X] from the prompt spread, so the p95 is a + E[X] + z95 sd[X]
    (seconds squared for the variance: b and c are in ms). Prefill fast enough that no stall reaches it."""
    model = replace(MODEL, max_batch=1, step_ms_per_kv_position=0.01, prefill_tokens_per_s=1e6)
    point = Point(prompts=tuple(SPREAD), output=20.0, rate=0.0, batch=30.0, model=model)
    x = [(0.01 * (prompt + 10.0) + 0.1) / 1000.0 for prompt in SPREAD]
    expected = 0.010 + statistics.fmean(x) + Z95 * statistics.pstdev(x)
    assert tpot_s([point])[0] == pytest.approx(expected, rel=1e-8)


def test_pairs_evaluated_together_do_not_see_each_other() -> None:
    """The planner evaluates every (deployment, GPU type) pair at once: each pair's p95 is the one it has alone,
    whatever the others' prompts, batches and step times. To the bisection's precision, not exactly: the count
    of others summed over (and so the bracket a pair's quantile is bisected in) reaches the largest batch's tail."""
    pairs = [
        BUSY,
        LONG_DECODES,
        Point(prompts=tuple(np.geomspace(50.0, 6000.0, PROMPT_QUANTILE_POINTS)), output=80.0, rate=0.5, batch=300.0),
    ]
    together = tpot_s(pairs)
    assert together == pytest.approx([tpot_s([pair])[0] for pair in pairs], rel=1e-7)


def test_the_model_has_no_time_scale_of_its_own() -> None:
    """Every duration k times as long (steps, per-token prefill) and every rate k times slower: the p95 TPOT is
    k times as long. No term may compare a rate or a duration with a fixed one (a floor of 1 per second binds
    at steps of seconds and a rate of one request a minute). Scaled up, not down: the step's spread has a floor
    of 1e-12 s, a guard that shows (at 1e-8) only with microsecond steps."""
    for point in (BUSY, LONG_DECODES):
        base = tpot_s([point])[0]
        for k in (1e2, 1e4):
            assert tpot_s([point.scaled_in_time(k)])[0] == pytest.approx(k * base, rel=1e-8), k


def test_a_decode_shorter_than_the_prefill_it_follows_has_a_chunk_on_every_step() -> None:
    """Two-token outputs behind a channel 80 % busy with whole-chunk prompts: the work a sequence leaves behind
    (rho E[S] / 2, prompts alike) outlasts its 2 steps, so every step carries a full chunk (the busy share is
    capped at 1) and the p95, like every interval, is one sequence's step + 25.6 ms."""
    prompts = (1024.0,) * PROMPT_QUANTILE_POINTS
    probe = Point(prompts=prompts, output=2.0, rate=1.0, batch=0.0)
    point = replace(probe, rate=0.8 / probe.mean_service_s)
    assert point.rho == pytest.approx(0.8)
    assert point.rho * point.mean_service_s / 2.0 > (1.0 - point.rho) * point.output * point.step_s
    one_sequence = (10.0 + 2e-3 * (1024.0 + 1.0) + 0.1) / 1000.0
    assert tpot_s([point])[0] == pytest.approx(one_sequence + 0.0256, rel=1e-9)


def test_past_saturation_the_measured_tpot_is_one_sequence_and_a_chunk() -> None:
    """20 req/s of 1,024-token prompts: prefill alone would take the whole engine, so there is no finite batch.
    As in the default model (test_capacity: test_a_replica_past_saturation_is_infeasible_with_idle_power), the
    latencies are placeholders at a channel half busy, flagged infeasible; the decode counts no other sequence,
    so the p95 TPOT is one sequence's step + a full chunk (22 % of steps carry one at that placeholder)."""
    traffic = TrafficShape(
        prompt_quantiles=np.full(PROMPT_QUANTILE_POINTS, 1024.0),
        dispersion_curve=np.ones(len(DISPERSION_WINDOWS_S)),
        rate=1.0,
    )
    beyond = operating_point(
        MODEL,
        requests_per_second=20.0,
        mean_prompt_tokens=1024.0,
        mean_output_tokens=200.0,
        settings=SETTINGS,
        traffic=traffic,
    )
    assert not beyond.feasible and beyond.batch == math.inf
    assert beyond.predicted_tpot_p95_ms == pytest.approx(10.0 + (2e-3 * (1024.0 + 100.0) + 0.1) + 25.6, rel=1e-9)
