"""GPU check: measure a Llama-3-8B-shaped decoder's step time and energy with gridshift's NVML sampler.

Runs on a machine with an NVIDIA GPU and PyTorch (`make gpu-check`), or on the CPU with `--tiny`
and a fake power trace, to test the script itself. For each (batch, context) it captures the decode
step in a CUDA graph, warms it up, then replays it for a fixed time inside one sampler phase, and:

- checks that the GPU's energy counter and the integral of sampled power agree within 5%;
- fits gridshift's planner performance model to the points and checks that it predicts the measured
  step times within 10% (on all points, and leaving each point out in turn);
- compares with the reference H100 measurements in reference/ (copied from shared/data);
- writes a GPUProfile (validated by gridshift.api.GPUProfile), a JSON of every figure and a log.

Exit status 0 when every check passes, 1 when one fails, 2 when the machine cannot run it.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
# The GPU machine receives the repository, not an installed gridshift.
sys.path.insert(0, str(REPO_ROOT / "operator"))

import torch  # noqa: E402
import yaml  # noqa: E402
from decoder import LLAMA3_8B, TINY, RandomDecoder  # noqa: E402

from gridshift.api import GPUProfile  # noqa: E402
from gridshift.nvml import (  # noqa: E402
    NvmlPowerSampler,
    NvmlUnavailable,
    PhaseEnergy,
    PowerSampler,
    PowerTrace,
    SamplerSettings,
    TracePowerSampler,
)
from gridshift.planner.profiles import PerformanceModel, ProfilePoint, fit_performance_model, gpu_product_label  # noqa: E402

REFERENCE_CSV = HERE / "reference" / "h100_llama3_8b_measurements.csv"
ENERGY_AGREEMENT = 0.05
FIT_TOLERANCE = 0.10


@dataclass(frozen=True)
class DecodeMeasurement:
    batch: int
    context: int
    steps: int
    step_ms: float
    tokens_per_s: float
    mean_power_w: float
    p95_power_w: float
    energy_j: float
    integrated_energy_j: float
    counter_vs_integrated: float | None
    j_per_token: float
    seconds: float


def parse_ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny decoder (runs on the CPU) to test the script")
    parser.add_argument("--batches", type=parse_ints, default=[1, 8, 16, 32, 64, 128])
    parser.add_argument("--contexts", type=parse_ints, default=[1024, 2048])
    parser.add_argument("--phase-seconds", type=float, default=4.0, help="measured time per point, s")
    parser.add_argument("--warmup-seconds", type=float, default=1.5, help="unmeasured replay before each phase, s")
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="idle power phase with weights loaded, s")
    parser.add_argument("--prefill-tokens", type=int, default=2048, help="prompt length of the prefill phase")
    parser.add_argument("--no-cuda-graphs", action="store_true", help="replay decode steps eagerly")
    parser.add_argument(
        "--fake-power-watts",
        type=float,
        default=None,
        help="replay a constant power instead of reading NVML (for --tiny on machines without a GPU)",
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "out" / "gpu-check", help="folder for results")
    parser.add_argument("--model-name", default="meta-llama/Meta-Llama-3-8B-Instruct")
    return parser.parse_args(argv)


class Log:
    """Prints and keeps every line, so the log file holds what the terminal showed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)
        self.path.write_text("\n".join(self.lines) + "\n")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(decoder: RandomDecoder, batch: int, context: int, use_graph: bool) -> Callable[[], None]:
    """A callable that runs one decode step: a CUDA graph replay where possible."""
    if not use_graph:

        def eager_step() -> None:
            decoder.decode_step(batch, context)

        return eager_step
    # Warm up on a side stream before capture, as CUDA graph capture requires.
    stream = torch.cuda.Stream()  # type: ignore[no-untyped-call]
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            decoder.decode_step(batch, context)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        decoder.decode_step(batch, context)
    return graph.replay


def check_graph_matches_eager(decoder: RandomDecoder, batch: int, context: int, step: Callable[[], None]) -> bool:
    """The captured graph computes what the eager step computes, from the same tokens and cache."""
    start = decoder.tokens[:batch].clone()
    eager = decoder.decode_step(batch, context).clone()
    decoder.tokens[:batch].copy_(start)
    step()
    synchronize(decoder.device)
    return bool(torch.equal(eager, decoder.tokens[:batch]))


def timed_replays(step: Callable[[], None], count: int, device: torch.device) -> float:
    """Seconds for `count` steps, timed with device events on a GPU."""
    if device.type == "cuda":
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        begin.record()
        for _ in range(count):
            step()
        end.record()
        end.synchronize()
        return float(begin.elapsed_time(end)) / 1000.0
    started = time.perf_counter()
    for _ in range(count):
        step()
    return time.perf_counter() - started


def measure_decode(
    decoder: RandomDecoder,
    sampler: PowerSampler,
    batch: int,
    context: int,
    args: argparse.Namespace,
    log: Log,
) -> DecodeMeasurement:
    use_graph = decoder.device.type == "cuda" and not args.no_cuda_graphs
    step = make_step(decoder, batch, context, use_graph)
    if use_graph and not check_graph_matches_eager(decoder, batch, context, step):
        log(f"  WARNING b={batch} ctx={context}: graph replay differs from the eager step")
    # Warm up until clocks and power settle; the warm-up also calibrates how many steps fill a phase.
    steps_done, warm_seconds = 0, 0.0
    while warm_seconds < args.warmup_seconds:
        chunk = max(1, steps_done)
        warm_seconds += timed_replays(step, chunk, decoder.device)
        steps_done += chunk
    estimated_step_s = warm_seconds / steps_done
    steps = max(3, math.ceil(args.phase_seconds / estimated_step_s))
    sampler.begin_phase(f"decode_b{batch}_ctx{context}")
    seconds = timed_replays(step, steps, decoder.device)
    phase = sampler.end_phase()
    step_ms = seconds / steps * 1000.0
    tokens = steps * batch
    return DecodeMeasurement(
        batch=batch,
        context=context,
        steps=steps,
        step_ms=step_ms,
        tokens_per_s=tokens / seconds,
        mean_power_w=phase.energy_joules / phase.duration_s,
        p95_power_w=phase.p95_power_watts,
        energy_j=phase.energy_joules,
        integrated_energy_j=phase.integrated_energy_joules,
        counter_vs_integrated=phase.counter_vs_integrated,
        j_per_token=phase.energy_joules / tokens,
        seconds=phase.duration_s,
    )


def measure_prefill(
    decoder: RandomDecoder, sampler: PowerSampler, args: argparse.Namespace
) -> tuple[float, PhaseEnergy, int]:
    """Prompt tokens per second of back-to-back single-prompt prefills, with the phase's energy."""
    length = min(args.prefill_tokens, decoder.max_context)
    prompts = torch.randint(0, decoder.shape.vocab, (1, length), device=decoder.device)

    def one_prefill() -> None:
        decoder.prefill(prompts)

    for _ in range(2):
        one_prefill()
    synchronize(decoder.device)
    single = timed_replays(one_prefill, 1, decoder.device)
    passes = max(2, math.ceil(args.phase_seconds / max(single, 1e-6)))
    sampler.begin_phase(f"prefill_b1_t{length}")
    seconds = timed_replays(one_prefill, passes, decoder.device)
    phase = sampler.end_phase()
    return passes * length / seconds, phase, length


def load_reference() -> dict[tuple[int, int], dict[str, str]]:
    """Reference decode rows by (batch, context); the first run wins where a point was repeated."""
    rows: dict[tuple[int, int], dict[str, str]] = {}
    with REFERENCE_CSV.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["kind"] == "decode":
                rows.setdefault((int(row["batch"]), int(row["context"])), row)
    return rows


def profile_points(measurements: list[DecodeMeasurement], prefill_tokens_per_s: float) -> list[ProfilePoint]:
    return [
        ProfilePoint(
            batch=m.batch,
            context_tokens=m.context,
            step_time_ms=m.step_ms,
            power_watts=m.mean_power_w,
            prefill_tokens_per_s=prefill_tokens_per_s,
        )
        for m in measurements
    ]


def fit_errors(
    points: list[ProfilePoint], fit: Callable[[list[ProfilePoint]], PerformanceModel]
) -> tuple[list[float], list[float | None]]:
    """Relative step-time errors of the model fitted on all points, and of each point left out."""
    model = fit(points)
    in_sample = [model.step_time_ms(p.batch, p.context_tokens) / p.step_time_ms - 1.0 for p in points]
    left_out: list[float | None] = []
    for index, point in enumerate(points):
        rest = points[:index] + points[index + 1 :]
        if len({p.batch for p in rest}) < 2:
            left_out.append(None)
            continue
        model = fit(rest)
        left_out.append(model.step_time_ms(point.batch, point.context_tokens) / point.step_time_ms - 1.0)
    return in_sample, left_out


def open_sampler(args: argparse.Namespace) -> tuple[PowerSampler, str]:
    if args.fake_power_watts is not None:
        trace = PowerTrace.steps([(1.0, args.fake_power_watts)])
        return TracePowerSampler(trace, SamplerSettings()), "fake trace"
    sampler = NvmlPowerSampler(SamplerSettings(sample_period_ms=20.0))
    return sampler, f"NVML ({sampler.power_reading} power every 20 ms, total-energy counter)"


def node_label_of(gpu_name: str) -> str:
    """The nvidia.com/gpu.product label value of a GPU, as GPU feature discovery writes it."""
    try:
        return gpu_product_label(gpu_name)
    except ValueError:
        return gpu_name.strip().replace(" ", "-")


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.1f}%"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    log = Log(args.out / "gpu_check.log")
    shape = TINY if args.tiny else LLAMA3_8B
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and not args.tiny:
        log("no CUDA device: run on a machine with an NVIDIA GPU, or pass --tiny --fake-power-watts 300")
        return 2
    try:
        sampler, sampler_description = open_sampler(args)
    except NvmlUnavailable as error:
        log(f"cannot measure power: {error}")
        return 2
    gpu_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    log(f"gridshift gpu-check  {datetime.now(UTC).isoformat(timespec='seconds')}")
    log(f"device: {gpu_name}  torch {torch.__version__}  power: {sampler_description}")
    log(f"sampler GPUs: {', '.join(sampler.gpu_names())}")

    started = time.perf_counter()
    # bf16 as served on the GPU; float32 on the CPU, whose bf16 matrix products are slow and only test the script.
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    decoder = RandomDecoder(
        shape, device=device, dtype=dtype, max_batch=max(args.batches), max_context=max(args.contexts)
    )
    synchronize(device)
    log(
        f"model: {shape.parameter_count() / 1e9:.2f} B parameters, weights {decoder.weight_bytes() / 2**30:.2f} GiB, "
        f"KV cache {decoder.kv_cache_bytes() / 2**30:.2f} GiB, ready in {time.perf_counter() - started:.1f} s"
    )

    with closing(sampler):
        sampler.begin_phase("idle")
        time.sleep(args.idle_seconds)
        idle = sampler.end_phase()
        log(f"idle (weights resident): {idle.mean_power_watts:.1f} W, counter {pct(idle.counter_vs_integrated)}")

        prefill_rate, prefill_phase, prefill_length = measure_prefill(decoder, sampler, args)
        prefill_j_per_token = prefill_phase.energy_joules / (prefill_rate * prefill_phase.duration_s)
        log(
            f"prefill b=1 t={prefill_length}: {prefill_rate:,.0f} tokens/s, "
            f"{prefill_phase.energy_joules / prefill_phase.duration_s:.1f} W, {prefill_j_per_token:.4f} J/token, "
            f"counter vs integrated {pct(prefill_phase.counter_vs_integrated)}"
        )

        measurements: list[DecodeMeasurement] = []
        for context in args.contexts:
            for batch in args.batches:
                m = measure_decode(decoder, sampler, batch, context, args, log)
                measurements.append(m)
                log(
                    f"decode b={batch:>4} ctx={context:>5}: {m.step_ms:7.3f} ms/step  {m.tokens_per_s:9.1f} tok/s  "
                    f"{m.mean_power_w:6.1f} W (p95 {m.p95_power_w:6.1f})  {m.j_per_token:.4f} J/token  "
                    f"counter vs integrated {pct(m.counter_vs_integrated)}"
                )

    failures: list[str] = []
    log()
    log(f"check 1: energy counter and integrated power agree within {ENERGY_AGREEMENT:.0%}")
    for m in measurements:
        if m.counter_vs_integrated is None:
            failures.append(f"b={m.batch} ctx={m.context}: no energy counter reading")
        elif abs(m.counter_vs_integrated) > ENERGY_AGREEMENT:
            failures.append(f"b={m.batch} ctx={m.context}: counter vs integrated {pct(m.counter_vs_integrated)}")
    worst = max((abs(m.counter_vs_integrated or 0.0) for m in measurements), default=0.0)
    log(f"  worst disagreement over {len(measurements)} decode phases: {worst * 100:.2f}%")

    gpu_type = node_label_of(gpu_name) if device.type == "cuda" else "cpu-tiny"
    points = profile_points(measurements, prefill_rate)

    def fit(selected: list[ProfilePoint]) -> PerformanceModel:
        return fit_performance_model(
            selected,
            model=args.model_name,
            gpu_type=gpu_type,
            idle_power_watts=idle.mean_power_watts,
            prefill_tokens_per_s=prefill_rate,
        )

    model = fit(points)
    in_sample, left_out = fit_errors(points, fit)
    log()
    log(f"check 2: fitted profile predicts measured step time within {FIT_TOLERANCE:.0%}")
    log(
        f"  fit: step_ms = {model.step_base_ms:.3f} + {model.step_ms_per_kv_position * 1e6:.2f}e-6 * B*ctx "
        f"+ {model.step_ms_per_sequence:.4f} * B;  power_W = min({model.power_cap_watts:.0f}, "
        f"{model.power_base_watts:.1f} + {model.power_watts_per_sequence:.3f} * B "
        f"+ {model.power_watts_per_log_batch:.2f} * ln B)"
    )
    log(f"  {'batch':>5} {'ctx':>5} {'measured ms':>11} {'fit ms':>8} {'error':>7} {'left-out error':>14}")
    for point, fit_error, loo in zip(points, in_sample, left_out, strict=True):
        predicted = model.step_time_ms(point.batch, point.context_tokens)
        log(
            f"  {point.batch:>5} {point.context_tokens:>5} {point.step_time_ms:>11.3f} {predicted:>8.3f} "
            f"{pct(fit_error):>7} {pct(loo):>14}"
        )
        if abs(fit_error) > FIT_TOLERANCE:
            failures.append(f"b={point.batch} ctx={point.context_tokens}: fit error {pct(fit_error)}")
        if loo is not None and abs(loo) > FIT_TOLERANCE:
            failures.append(f"b={point.batch} ctx={point.context_tokens}: left-out fit error {pct(loo)}")

    reference = load_reference()
    comparison = []
    log()
    log("comparison with the reference H100 measurements (reference/h100_llama3_8b_measurements.csv)")
    log(
        f"  {'batch':>5} {'ctx':>5} {'step ms':>8} {'ref ms':>8} {'W':>6} {'ref W':>6} "
        f"{'J/token':>8} {'ref J/tok':>9} {'J/tok diff':>10}"
    )
    for m in measurements:
        ref = reference.get((m.batch, m.context))
        if ref is None:
            continue
        ref_step, ref_w, ref_j = float(ref["step_ms"]), float(ref["avg_power_w"]), float(ref["j_per_token"])
        comparison.append(
            {"batch": m.batch, "context": m.context, "step_ms": m.step_ms, "ref_step_ms": ref_step,
             "power_w": m.mean_power_w, "ref_power_w": ref_w, "j_per_token": m.j_per_token, "ref_j_per_token": ref_j}
        )  # fmt: skip
        log(
            f"  {m.batch:>5} {m.context:>5} {m.step_ms:>8.3f} {ref_step:>8.3f} {m.mean_power_w:>6.1f} {ref_w:>6.1f} "
            f"{m.j_per_token:>8.4f} {ref_j:>9.4f} {pct(m.j_per_token / ref_j - 1):>10}"
        )

    profile = GPUProfile.model_validate(
        {
            "metadata": {"name": f"{'tiny' if args.tiny else 'llama3-8b'}-{gpu_type.lower()}-gpu-check"},
            "spec": {
                "model": args.model_name,
                "gpuType": gpu_type,
                "gpusPerReplica": 1,
                "idlePowerWatts": round(idle.mean_power_watts, 1),
                "prefillTokensPerSecond": round(prefill_rate, 1),
                "points": [
                    {
                        "batch": m.batch,
                        "contextTokens": m.context,
                        "stepTimeMs": round(m.step_ms, 3),
                        "powerWatts": round(m.mean_power_w, 1),
                        "prefillTokensPerSecond": round(prefill_rate, 1),
                    }
                    for m in measurements
                ],
                "source": {
                    "method": "Measured",
                    "description": (
                        f"gridshift e2e/gpu/gpu_check.py on {gpu_name}: {shape.parameter_count() / 1e9:.2f} "
                        f"B-parameter Llama-3-8B-shaped decoder, random {str(dtype).removeprefix('torch.')} "
                        "weights, decode in "
                        f"{'CUDA graphs' if device.type == 'cuda' and not args.no_cuda_graphs else 'eager mode'}, "
                        f"SDPA over a preallocated KV cache; power: {sampler_description}"
                    ),
                    "measuredAt": datetime.now(UTC).isoformat(timespec="seconds"),
                },
            },
        }
    )
    profile_path = args.out / "gpuprofile.yaml"
    profile_path.write_text(yaml.safe_dump(profile.to_wire(), sort_keys=False))
    results = {
        "device": gpu_name,
        "torch": torch.__version__,
        "power_source": sampler_description,
        "idle_power_w": idle.mean_power_watts,
        "prefill": {
            "tokens": prefill_length,
            "tokens_per_s": prefill_rate,
            "power_w": prefill_phase.energy_joules / prefill_phase.duration_s,
            "j_per_token": prefill_j_per_token,
            "counter_vs_integrated": prefill_phase.counter_vs_integrated,
        },
        "decode": [asdict(m) for m in measurements],
        "fit": {k: v for k, v in asdict(model).items() if isinstance(v, int | float)},
        "fit_errors": [
            {"batch": p.batch, "context": p.context_tokens, "in_sample": e, "left_out": lo}
            for p, e, lo in zip(points, in_sample, left_out, strict=True)
        ],
        "reference_comparison": comparison,
        "failures": failures,
        "seconds": time.perf_counter() - started,
    }
    (args.out / "gpu_check.json").write_text(json.dumps(results, indent=1))
    log()
    log(f"wrote {profile_path} and {args.out / 'gpu_check.json'} in {results['seconds']:.0f} s")
    for failure in failures:
        log(f"FAIL {failure}")
    log("gpu-check: " + ("PASS" if not failures else f"FAIL ({len(failures)} checks)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
