"""Does the planner's capacity model hold request by request? Predicted vs replayed p95 TTFT and TPOT.

For each trace, one replica of a deployment made of several copies of the trace (tenants), fed
round-robin, at 25/50/75/100% of its SLO capacity (the rate held minute by minute, as per-minute
sizing does): the p95 TTFT and TPOT the capacity model predicts (gridshift.planner.capacity, given
the burstiness and prompt tail measured by gridshift.simulation.requests.measure) against the
request-level engine's (gridshift.simulation.requests.serve) over an hour of requests. Traces: the
Azure 2023 conversation and code traces and a synthetic long-context trace (the conversation trace's
arrivals and outputs, prompts log-uniform 8k-40k tokens).

Out of sample: burstiness is measured on one hour of requests (seed 1, one trace offset) and scored on
another (seed 2, another offset). `--stepped` adds the token-stepped engine (slow) as a cross-check.

    .venv/bin/python bench/simulate_bench.py [--stepped]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from gridshift.planner.capacity import DISPERSION_WINDOWS_S, operating_point, replica_capacity
from gridshift.planner.profiles import PerformanceModel
from gridshift.planner.settings import PlannerSettings
from gridshift.profiles_catalog import default_performance_models
from gridshift.simulation.data import TraceProfile, shipped_trace
from gridshift.simulation.replica import simulate_replica
from gridshift.simulation.requests import RequestStream, ServedRequests, measure, serve, steady_stream

SHARES = (0.25, 0.5, 0.75, 1.0)
MINUTES = 60
WARMUP_S = 60.0
TOLERANCE = 0.15
H100 = "NVIDIA-H100-80GB-HBM3"
# (trace, model, GPU, TTFT SLO ms, TPOT SLO ms, tenants: copies of the trace in the deployment)
WORKLOADS = (
    ("conv", "meta-llama/Meta-Llama-3-8B-Instruct", H100, 1000.0, 50.0, 11),
    ("code", "meta-llama/Meta-Llama-3-8B-Instruct", H100, 2000.0, 50.0, 18),
    ("long", "meta-llama/Llama-3.1-8B-Instruct", H100, 8000.0, 50.0, 11),
)
# `--check`: workloads no choice of the model was made on (other models, GPUs, SLOs and deployment sizes).
CHECK_WORKLOADS = (
    ("conv", "Qwen/Qwen3-8B", H100, 1500.0, 40.0, 4),
    ("conv", "meta-llama/Llama-3.1-8B-Instruct", "NVIDIA-A100-SXM4-80GB", 2000.0, 60.0, 30),
    ("code", "Qwen/Qwen3-8B", H100, 3000.0, 50.0, 6),
    ("code", "mistralai/Mistral-7B-Instruct-v0.3", H100, 1500.0, 40.0, 40),
    ("long", "meta-llama/Llama-3.1-8B-Instruct", "NVIDIA-A100-SXM4-80GB", 12000.0, 60.0, 30),
)


def long_context_trace(seed: int = 7) -> TraceProfile:
    """The conversation trace's arrivals and outputs with prompts log-uniform in 8k..40k tokens."""
    conv = shipped_trace("conv")
    rng = np.random.default_rng(seed)
    prompts = np.exp(rng.uniform(np.log(8000.0), np.log(40000.0), len(conv.prompt_tokens))).astype(np.int64)
    return replace(conv, name="long", prompt_tokens=prompts, mean_prompt_tokens=float(prompts.mean()))


def stream_at(trace: TraceProfile, copies: int, offset: int, rate: float, seed: int) -> RequestStream:
    return steady_stream(trace, copies, offset=offset, rate=rate, seed=seed, minutes=MINUTES)


def after_warmup(served: ServedRequests, stream: RequestStream) -> ServedRequests:
    kept = stream.arrival_s >= WARMUP_S
    return ServedRequests(
        served.ttft_s[kept],
        served.decode_step_s[kept],
        served.chunk_share[kept],
        served.chunk_stall_s,
        served.intervals[kept],
        served.mean_batch,
        served.partial_share[kept],
        served.partial_fractions,
    )


def request_level_capacity(
    model: PerformanceModel, trace: TraceProfile, copies: int, ttft_slo: float, tpot_slo: float, guess: float
) -> float:
    """The largest rate at which the request-level engine meets both p95 objectives (bisection, scored hour)."""
    settings = PlannerSettings()
    low, high = 0.5 * guess, 1.5 * guess
    for _ in range(10):
        rate = (low + high) / 2.0
        stream = stream_at(trace, copies, offset=29, rate=rate, seed=2)
        served = after_warmup(serve(model, stream, prefill_chunk_tokens=settings.prefill_chunk_tokens), stream)
        ok = (
            served.ttft_quantile(settings.latency_quantile) * 1000.0 <= ttft_slo
            and served.tpot_quantile(settings.latency_quantile) * 1000.0 <= tpot_slo
        )
        low, high = (rate, high) if ok else (low, rate)
    return (low + high) / 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stepped", action="store_true", help="also run the token-stepped engine (slow)")
    parser.add_argument("--check", action="store_true", help="the out-of-sample workloads instead (CHECK_WORKLOADS)")
    args = parser.parse_args()
    settings = PlannerSettings()
    models = {(m.model, m.gpu_type): m for m in default_performance_models()}
    print(
        "| trace | model | SLO TTFT/TPOT ms | I (1 s) | I (15 s) | load | req/s | TTFT p95 predicted | replayed | "
        "ratio | TPOT p95 predicted | replayed | ratio |" + (" stepped TTFT | stepped TPOT |" if args.stepped else "")
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if args.stepped else ""))
    worst = 0.0
    capacities: list[str] = []
    for name, model_name, gpu, ttft_slo, tpot_slo, copies in CHECK_WORKLOADS if args.check else WORKLOADS:
        trace = long_context_trace() if name == "long" else shipped_trace(name)
        model = models[(model_name, gpu)]
        short = f"{model_name.split('/')[-1]} {gpu.split('-')[1]}"
        # Calibration: an hour at about 3/4 of a first capacity estimate, its own seed and offset.
        guess = replica_capacity(
            model,
            mean_prompt_tokens=trace.mean_prompt_tokens,
            mean_output_tokens=trace.mean_output_tokens,
            tpot_slo_ms=tpot_slo,
            ttft_slo_ms=ttft_slo,
            settings=settings,
        ).requests_per_second
        seen = measure(stream_at(trace, copies, offset=3, rate=0.75 * guess, seed=1))
        traffic = seen.traffic
        found = replica_capacity(
            model,
            mean_prompt_tokens=seen.prompt_mean_tokens,
            mean_output_tokens=trace.mean_output_tokens,
            tpot_slo_ms=tpot_slo,
            ttft_slo_ms=ttft_slo,
            settings=settings,
            traffic=traffic,
        )
        capacity = found.requests_per_second
        curve = dict(zip(DISPERSION_WINDOWS_S, seen.traffic.dispersion_curve, strict=True))
        for share in SHARES:
            rate = share * capacity
            predicted = operating_point(
                model,
                requests_per_second=rate,
                mean_prompt_tokens=seen.prompt_mean_tokens,
                mean_output_tokens=trace.mean_output_tokens,
                settings=settings,
                traffic=traffic,
            )
            stream = stream_at(trace, copies, offset=29, rate=rate, seed=2)
            served = after_warmup(serve(model, stream, prefill_chunk_tokens=settings.prefill_chunk_tokens), stream)
            ttft = served.ttft_quantile(settings.latency_quantile) * 1000.0
            tpot = served.tpot_quantile(settings.latency_quantile) * 1000.0
            ttft_ratio, tpot_ratio = predicted.predicted_ttft_p95_ms / ttft, predicted.predicted_tpot_p95_ms / tpot
            worst = max(worst, abs(ttft_ratio - 1.0), abs(tpot_ratio - 1.0))
            row = (
                f"| {name} | {short} | {ttft_slo:g}/{tpot_slo:g} | {curve[1.0]:.2f} | {curve[15.0]:.2f} | "
                f"{share:g} | {rate:.2f} | {predicted.predicted_ttft_p95_ms:,.0f} | {ttft:,.0f} | {ttft_ratio:.2f} | "
                f"{predicted.predicted_tpot_p95_ms:.1f} | {tpot:.1f} | {tpot_ratio:.2f} |"
            )
            if args.stepped:
                run = simulate_replica(
                    model,
                    stream.arrival_s,
                    stream.prompt_tokens,
                    stream.output_tokens,
                    requests_per_second=len(stream) / float(stream.arrival_s[-1] - stream.arrival_s[0]),
                    prefill_chunk_tokens=settings.prefill_chunk_tokens,
                    duration_seconds=MINUTES * 60.0,
                    warmup_seconds=WARMUP_S,
                )
                row += f" {run.ttft_p95_ms:,.0f} | {run.tpot_p95_ms:.1f} |"
            print(row)
        engine = request_level_capacity(model, trace, copies, ttft_slo, tpot_slo, capacity)
        capacities.append(
            f"| {name} | {short} | {ttft_slo:g}/{tpot_slo:g} | {capacity:.3f} ({found.limit}) | {engine:.3f} | "
            f"{capacity / engine:.3f} |"
        )
    verdict = "holds" if worst <= TOLERANCE else "misses"
    print(f"\nworst |predicted / replayed - 1| = {worst:.3f} ({verdict} the {TOLERANCE:.0%} target)\n")
    print("| trace | model | SLO TTFT/TPOT ms | capacity predicted req/s | request-level | ratio |")
    print("|---|---|---|---:|---:|---:|")
    print("\n".join(capacities))


if __name__ == "__main__":
    main()
