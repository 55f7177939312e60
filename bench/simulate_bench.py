"""Check the planner's latency model against a continuous-batching simulation of one replica.

Prints the markdown table of docs/simulate.md: predicted (gridshift.planner.capacity.operating_point)
against simulated (gridshift.simulation.replica) p95 TTFT and TPOT at shares of the SLO capacity, for
the Azure 2023 conversation and code traces, with Poisson arrivals (the model's assumption) and with
the traces' own arrival times.

    .venv/bin/python bench/simulate_bench.py
"""

from __future__ import annotations

from gridshift.planner.capacity import operating_point, replica_capacity
from gridshift.planner.settings import PlannerSettings
from gridshift.profiles_catalog import default_performance_models
from gridshift.simulation.data import shipped_trace
from gridshift.simulation.replica import simulate_replica

MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"
SHARES = (0.25, 0.5, 0.75, 1.0, 1.25)
WORKLOADS = (("conv", 1000.0, 50.0), ("code", 2000.0, 50.0))


def main() -> None:
    settings = PlannerSettings()
    model = next(m for m in default_performance_models() if m.model == MODEL)
    print(
        "| trace | TTFT/TPOT SLO ms | load (x capacity) | req/s | TTFT p95 predicted | simulated Poisson | "
        "simulated trace times | TPOT p95 predicted | simulated Poisson | simulated trace times |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, ttft_slo, tpot_slo in WORKLOADS:
        trace = shipped_trace(name)
        capacity = replica_capacity(
            model,
            mean_prompt_tokens=trace.mean_prompt_tokens,
            mean_output_tokens=trace.mean_output_tokens,
            tpot_slo_ms=tpot_slo,
            ttft_slo_ms=ttft_slo,
            settings=settings,
        ).requests_per_second
        for share in SHARES:
            rate = share * capacity
            predicted = operating_point(
                model,
                requests_per_second=rate,
                mean_prompt_tokens=trace.mean_prompt_tokens,
                mean_output_tokens=trace.mean_output_tokens,
                settings=settings,
            )
            runs = [
                simulate_replica(
                    model,
                    trace.arrival_seconds,
                    trace.prompt_tokens,
                    trace.output_tokens,
                    requests_per_second=rate,
                    prefill_chunk_tokens=settings.prefill_chunk_tokens,
                    duration_seconds=900.0,
                    poisson_seed=seed,
                )
                for seed in (1, None)
            ]
            print(
                f"| {name} | {ttft_slo:g}/{tpot_slo:g} | {share:g} | {rate:.2f} | {predicted.ttft_p95_ms:,.0f} | "
                f"{runs[0].ttft_p95_ms:,.0f} | {runs[1].ttft_p95_ms:,.0f} | {predicted.tpot_p95_ms:.1f} | "
                f"{runs[0].tpot_p95_ms:.1f} | {runs[1].tpot_p95_ms:.1f} |"
            )


if __name__ == "__main__":
    main()
