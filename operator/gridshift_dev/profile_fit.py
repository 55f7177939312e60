"""How the GPU profiles gridshift ships are made from the measured data sets (build time only).

Shipped profiles are GPUProfile YAML files in gridshift/data/profiles/, loaded at run time by
gridshift.profiles_catalog. bench/fit_default_profiles.py generates them from ../shared/data through
the pure functions below, which turn CSV rows into GPUProfile objects:

- our H100 measurements of a Llama-3-8B-shaped decoder (h100-llama3-8b-power/measurements.csv);
- ML.ENERGY v3 (H100, B200) and v2 (A100-40GB, H100) vLLM runs (gpu-energy-mlenergy/DERIVED_*_flat.csv);
- GPU types nobody measured here (L4, A10G, L40S, A100-80GB, H200): a measured profile scaled by the
  two GPUs' datasheet figures (gridshift/data/gpus.yaml), see `scaled_profile`.

ML.ENERGY rows give batch, inter-token latency and power but not the prompt length or the prefill
rate, so a documented assumption fills each: the mean context during decode is an assumed prompt
length plus half the measured output length, and the prefill rate follows from the GPU's dense
peak FLOP/s at the model-FLOP utilisation our H100 prefill measured (see PREFILL_MFU).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import yaml

from gridshift.api import GPUProfile
from gridshift.api.gpu_profile import ProfilePoint
from gridshift.planner.kvmemory import VLLM_BLOCK_TOKENS, KvMemory, ModelArchitecture
from gridshift.planner.profiles import gpu_product_label
from gridshift.profiles_catalog import (
    PROFILE_BASIS_LABEL,
    GpuSpec,
    gpu_specs,
    model_architectures,
    performance_model,
)

# Our H100 prefill of an 8.03 B model ran at 23,685 tokens/s (512-token prompts): 2 x 8.03e9 x 23,685
# / 989e12 dense BF16 FLOP/s = 0.385 of peak.
PREFILL_MFU = 0.385
# Dense peak FLOP/s per GPU by precision, from NVIDIA's data sheets (without sparsity): gpus.yaml.
PEAK_FLOPS: Mapping[str, Mapping[str, float]] = {
    label: {"bf16": spec.bf16_dense_tflops * 1e12, "fp8": spec.fp8_dense_tflops * 1e12}
    for label, spec in gpu_specs().items()
}
# Loaded-but-idle power of one H100 holding its weights (coldstart.json: 126 W).
H100_IDLE_WATTS_PER_GPU = 126.0
# Prompt length assumed per ML.ENERGY task, tokens (the data set does not publish it): LMArena and
# ShareGPT chat turns are short; GPQA questions with their choices run to a few hundred tokens.
ASSUMED_PROMPT_TOKENS: Mapping[str, float] = {"lm-arena-chat": 500.0, "gpqa": 250.0, "chat": 250.0}


@dataclass(frozen=True)
class Selection:
    """One profile to fit: a model on a GPU with a tensor-parallel size from one data set's task."""

    model: str
    gpu: str
    gpus: int
    task: str
    active_params_billion: float
    precision: str = "bf16"


V3_SELECTION: tuple[Selection, ...] = (
    Selection("meta-llama/Llama-3.1-8B-Instruct", "H100", 1, "lm-arena-chat", 8.0),
    Selection("meta-llama/Llama-3.1-8B-Instruct", "B200", 1, "lm-arena-chat", 8.0),
    Selection("meta-llama/Llama-3.1-70B-Instruct", "H100", 4, "lm-arena-chat", 70.0),
    Selection("meta-llama/Llama-3.1-70B-Instruct", "B200", 2, "lm-arena-chat", 70.0),
    Selection("Qwen/Qwen3-8B", "H100", 1, "lm-arena-chat", 8.0),
    Selection("Qwen/Qwen3-8B", "B200", 1, "lm-arena-chat", 8.0),
    Selection("Qwen/Qwen3-32B", "H100", 2, "lm-arena-chat", 32.0),
    Selection("Qwen/Qwen3-32B", "B200", 1, "lm-arena-chat", 32.0),
    Selection("openai/gpt-oss-20b", "H100", 1, "gpqa", 3.6),
    Selection("openai/gpt-oss-20b", "B200", 1, "gpqa", 3.6),
)
V2_SELECTION: tuple[Selection, ...] = (
    Selection("meta-llama/Meta-Llama-3.1-8B-Instruct", "A100-40GB", 1, "chat", 8.0),
    Selection("meta-llama/Meta-Llama-3.1-8B-Instruct", "H100", 1, "chat", 8.0),
    Selection("meta-llama/Meta-Llama-3.1-70B-Instruct", "A100-40GB", 8, "chat", 70.0),
    Selection("meta-llama/Meta-Llama-3.1-70B-Instruct", "H100", 4, "chat", 70.0),
    Selection("mistralai/Mistral-7B-Instruct-v0.3", "A100-40GB", 1, "chat", 7.2),
    Selection("mistralai/Mistral-7B-Instruct-v0.3", "H100", 1, "chat", 7.2),
)

MEASURED_H100_MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"
MLENERGY_V3_ATTRIBUTION = (
    "ML.ENERGY Benchmark V3 Dataset (ml-energy/leaderboard @0cd52dab, Apache-2.0), vLLM, task {task}; "
    "step time = median inter-token latency, power = avg_power_watts; context assumed {prompt:g} prompt "
    "tokens + half the mean output; prefill rate estimated at {mfu:.3f} of dense peak FLOP/s."
)
MLENERGY_V2_ATTRIBUTION = (
    "ML.ENERGY leaderboard v2 (ml-energy/leaderboard-v2 @c3af7f31, Apache-2.0), vLLM, task {task}; "
    "step time = avg_tpot_s, power = avg_power_W_derived (energy per request / mean output tokens x "
    "throughput); context assumed {prompt:g} prompt tokens + half the mean output; prefill rate estimated "
    "at {mfu:.3f} of dense peak FLOP/s."
)
MEASURED_ATTRIBUTION = (
    "gridshift H100 measurements 2026-11-27 (NVIDIA H100 80GB HBM3, driver 580.159.04, 700 W limit, NVML "
    "power), Llama-3-8B-shaped decoder in CUDA graphs; shared/data/h100-llama3-8b-power. Prefill rate: mean "
    "of the prefill phases with prompts up to 2048 tokens; idle: weights resident (coldstart.json)."
)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def estimated_prefill_tokens_per_s(gpu_label: str, gpus: int, active_params_billion: float, precision: str) -> float:
    """Compute-bound prefill: 2 FLOPs per active parameter per token at PREFILL_MFU of dense peak."""
    peak = PEAK_FLOPS[gpu_label][precision] * gpus
    return round(PREFILL_MFU * peak / (2.0 * active_params_billion * 1e9), 1)


SCALED_FROM_ANNOTATION = "gridshift.dev/scaled-from"


def _profile(
    name: str,
    model: str,
    gpu_label: str,
    gpus: int,
    points: list[dict[str, float | int]],
    description: str,
    method: str,
    idle_watts: float | None,
    prefill: float,
    measured_at: str | None = None,
    basis: str = "measured",
    annotations: Mapping[str, str] | None = None,
) -> GPUProfile:
    spec: dict[str, object] = {
        "model": model,
        "gpuType": gpu_label,
        "gpusPerReplica": gpus,
        "prefillTokensPerSecond": prefill,
        "points": points,
        "source": {"method": method, "description": description},
    }
    if idle_watts is not None:
        spec["idlePowerWatts"] = idle_watts
    if measured_at is not None:
        spec["source"] = {**spec["source"], "measuredAt": measured_at}  # type: ignore[dict-item]
    metadata: dict[str, object] = {"name": name, "labels": {PROFILE_BASIS_LABEL: basis}}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return GPUProfile.model_validate({"metadata": metadata, "spec": spec})


def measured_h100_profile(rows: Iterable[Mapping[str, str]]) -> GPUProfile:
    """Our H100 measurements (measurements.csv rows) as a GPUProfile."""
    rows = list(rows)
    points: list[dict[str, float | int]] = [
        {
            "batch": int(r["batch"]),
            "contextTokens": int(r["context"]),
            "stepTimeMs": float(r["step_ms"]),
            "powerWatts": float(r["avg_power_w"]),
        }
        for r in rows
        if r["kind"] == "decode"
    ]
    prefill = [float(r["tokens_per_s"]) for r in rows if r["kind"] == "prefill" and int(r["prompt_tokens"]) <= 2048]
    if not points or not prefill:
        raise ValueError("measurements: need decode rows and prefill rows with prompt_tokens <= 2048")
    return _profile(
        name="meta-llama-3-8b-instruct-h100-tp1-measured",
        model=MEASURED_H100_MODEL,
        gpu_label=gpu_product_label("H100"),
        gpus=1,
        points=points,
        description=MEASURED_ATTRIBUTION,
        method="Measured",
        idle_watts=H100_IDLE_WATTS_PER_GPU,
        prefill=round(sum(prefill) / len(prefill), 1),
        measured_at="2026-11-27T00:00:00Z",
    )


def _idle_watts(gpu_label: str, gpus: int) -> float | None:
    # Only the H100's loaded-idle power is measured; other GPUs get the fit's documented estimate.
    return H100_IDLE_WATTS_PER_GPU * gpus if gpu_label == gpu_product_label("H100") else None


def _published(chosen: Selection, points: list[dict[str, float | int]], release: str, attribution: str) -> GPUProfile:
    """The profile of one ML.ENERGY selection (`release` v2 or v3), from its measured points."""
    label = gpu_product_label(chosen.gpu)
    prompt = ASSUMED_PROMPT_TOKENS[chosen.task]
    return _profile(
        name=f"{slug(chosen.model.split('/')[-1])}-{slug(chosen.gpu)}-tp{chosen.gpus}-mlenergy-{release}",
        model=chosen.model,
        gpu_label=label,
        gpus=chosen.gpus,
        points=points,
        description=attribution.format(task=chosen.task, prompt=prompt, mfu=PREFILL_MFU),
        method="Published",
        idle_watts=_idle_watts(label, chosen.gpus),
        prefill=estimated_prefill_tokens_per_s(label, chosen.gpus, chosen.active_params_billion, chosen.precision),
    )


@dataclass(frozen=True)
class _Release:
    """How one ML.ENERGY release names the columns a profile is fitted from."""

    name: str
    attribution: str
    model: str
    gpu: str
    output_tokens: str
    power_watts: str
    sweep: str
    """The column the benchmark swept (the rows' order)."""
    gpus: Callable[[Mapping[str, str]], int]
    step_time_ms: Callable[[Mapping[str, str]], float]


_V3 = _Release(
    "v3", MLENERGY_V3_ATTRIBUTION, "model_id", "gpu_model", "avg_output_len", "avg_power_watts", "max_num_seqs",
    gpus=lambda r: int(r["num_gpus"]), step_time_ms=lambda r: float(r["median_itl_ms"]),
)  # fmt: skip
_V2 = _Release(
    "v2", MLENERGY_V2_ATTRIBUTION, "model", "gpu", "avg_output_tokens", "avg_power_W_derived", "max_batch_size",
    gpus=lambda r: int(r["tp"]) * int(r["pp"]), step_time_ms=lambda r: float(r["avg_tpot_s"]) * 1000.0,
)  # fmt: skip


def _mlenergy_profiles(
    release: _Release, rows: Iterable[Mapping[str, str]], selection: Sequence[Selection]
) -> list[GPUProfile]:
    rows = list(rows)
    profiles = []
    for chosen in selection:
        label = gpu_product_label(chosen.gpu)
        prompt = ASSUMED_PROMPT_TOKENS[chosen.task]
        matching = [
            r
            for r in rows
            if r[release.model] == chosen.model
            and r["task"] == chosen.task
            and gpu_product_label(r[release.gpu]) == label
            and release.gpus(r) == chosen.gpus
        ]
        if len(matching) < 2:
            raise ValueError(f"ML.ENERGY {release.name} has {len(matching)} rows for {chosen}; need 2 or more")
        points: list[dict[str, float | int]] = [
            {
                "batch": max(1, round(float(r["avg_batch_size"]))),
                "contextTokens": round(prompt + float(r[release.output_tokens]) / 2),
                "stepTimeMs": round(release.step_time_ms(r), 4),
                "powerWatts": round(float(r[release.power_watts]), 2),
            }
            for r in sorted(matching, key=lambda r: int(r[release.sweep]))
        ]
        profiles.append(_published(chosen, points, release.name, release.attribution))
    return profiles


def mlenergy_v3_profiles(
    rows: Iterable[Mapping[str, str]], selection: Sequence[Selection] = V3_SELECTION
) -> list[GPUProfile]:
    """ML.ENERGY v3 rows (DERIVED_v3_llm_configs_flat.csv) as GPUProfiles, one per selection."""
    return _mlenergy_profiles(_V3, rows, selection)


def mlenergy_v2_profiles(
    rows: Iterable[Mapping[str, str]], selection: Sequence[Selection] = V2_SELECTION
) -> list[GPUProfile]:
    """ML.ENERGY v2 rows (DERIVED_v2_llm_configs_flat.csv) as GPUProfiles, one per selection."""
    return _mlenergy_profiles(_V2, rows, selection)


def render_profile_yaml(profile: GPUProfile) -> str:
    """The YAML text a shipped profile file holds (deterministic, so regeneration can be diffed)."""
    header = "# Generated by bench/fit_default_profiles.py from shared/data; see README.md here. Do not edit.\n"
    return header + yaml.safe_dump(profile.to_wire(), sort_keys=False, width=110, allow_unicode=True)


def profile_file_name(profile: GPUProfile) -> str:
    return f"{profile.metadata['name']}.yaml"


# --- Scaled profiles: GPU types without measurements -------------------------------------------------

SCALED_ATTRIBUTION = (
    "Scaled from {base} (measured on {base_gpu}; see that profile's source) to {gpu} by datasheet figures "
    "(gridshift/data/gpus.yaml): step = fixed overhead {overhead_ms:.2f} ms + weights {weights_gb:.1f} GB/GPU read at "
    "{bw:g} GB/s + per-sequence remainder {per_seq_ns:.0f} ns/position + KV reads at {bw:g} GB/s (the overheads "
    "are what the {base_gpu} fit leaves beyond its {base_bw:g} GB/s reads), floored by compute at {mfu:.3f} of "
    "{tflops:g} dense TFLOP/s; power and idle x {tdp_ratio:.3f} (board power {base_tdp:g} -> {tdp:g} W), capped at "
    "the board power; prefill x {flops_ratio:.3f} (dense BF16 TFLOP/s); points end at the largest batch the "
    "{gpu}'s KV cache holds at their context. Not measured."
)


@dataclass(frozen=True)
class Scaling:
    """One scaled profile: a shipped measured profile (by name) moved to another GPU type, same TP size."""

    base: str
    gpu: str
    active_params_billion: float


SCALED_SELECTION: tuple[Scaling, ...] = (
    Scaling("llama-3-1-8b-instruct-h100-tp1-mlenergy-v3", "L4", 8.0),
    Scaling("llama-3-1-8b-instruct-h100-tp1-mlenergy-v3", "A10G", 8.0),
    Scaling("llama-3-1-8b-instruct-h100-tp1-mlenergy-v3", "L40S", 8.0),
    Scaling("llama-3-1-8b-instruct-h100-tp1-mlenergy-v3", "A100-40GB", 8.0),
    Scaling("llama-3-1-8b-instruct-h100-tp1-mlenergy-v3", "A100-80GB", 8.0),
    Scaling("llama-3-1-8b-instruct-h100-tp1-mlenergy-v3", "H200", 8.0),
    Scaling("llama-3-1-70b-instruct-h100-tp4-mlenergy-v3", "A100-80GB", 70.0),
    Scaling("llama-3-1-70b-instruct-h100-tp4-mlenergy-v3", "H200", 70.0),
)
"""Llama-3.1-8B on every type (it fits a 24 GB GPU), all from the one v3 H100 run so that a deployment
of that model id sees one consistent set (A100-40GB is also measured, in v2, under the id
meta-llama/Meta-Llama-3.1-8B-Instruct, with an older vLLM: its step times are 2-3x the v3 ones).
70B with the H100's TP 4 on the NVLink parts whose memory holds it at TP 4. 70B on L4, A10G, L40S
would need TP 8 over PCIe, whose all-reduce cost a bandwidth scaling from an NVLink H100 does not
capture: not shipped."""


def scaled_profile(
    base: GPUProfile,
    target: GpuSpec,
    active_params_billion: float,
    *,
    architecture: ModelArchitecture,
    kv: KvMemory | None = None,
) -> GPUProfile:
    """The base profile's points moved to another GPU type by datasheet figures.

    The base's fitted step time a + b x batch x context + c x batch is split into what reads memory at
    the base GPU's datasheet bandwidth (the weights once per step: W/BW; each KV position: k/BW, per GPU)
    and what is left: a fixed overhead per step (kernel launches, scheduling, all-reduce) and a
    per-position remainder, which do not follow bandwidth (ML.ENERGY's B200 runs show the same
    per-sequence slope as the H100's at 2.4x the bandwidth). On the target the reads take W/BW' and
    k/BW', the rest is kept. A step is never shorter than its FLOPs (2 x active parameters per sequence)
    at the prefill's model-FLOP utilisation, which binds on GPUs with little compute for their
    bandwidth. Power scales with board power (both GPUs draw the same fraction of their TDP at the same
    relative load), prefill with dense BF16 FLOP/s. The points stop where `kv` cannot hold the batch at
    the point's context, with a last point at the largest batch it holds: the target could not have
    run the larger ones.
    """
    source = gpu_specs()[base.spec.gpu_type]
    gpus = base.spec.gpus_per_replica
    fitted = performance_model(base)
    weights_per_gpu = architecture.weights_bytes / gpus
    kv_per_position_per_gpu = architecture.kv_bytes_per_sequence(VLLM_BLOCK_TOKENS, gpus) / VLLM_BLOCK_TOKENS / gpus
    bw, base_bw = target.memory_bandwidth_gb_per_s * 1e9, source.memory_bandwidth_gb_per_s * 1e9
    overhead_ms = max(0.0, fitted.step_base_ms - weights_per_gpu / base_bw * 1000.0)
    remainder_ms = max(0.0, fitted.step_ms_per_kv_position - kv_per_position_per_gpu / base_bw * 1000.0)
    step_base_ms = overhead_ms + weights_per_gpu / bw * 1000.0
    per_position_ms = remainder_ms + kv_per_position_per_gpu / bw * 1000.0
    tdp_ratio = target.tdp_watts / source.tdp_watts
    flops_ratio = target.bf16_dense_tflops / source.bf16_dense_tflops
    flops_per_s = PREFILL_MFU * target.bf16_dense_tflops * 1e12 * gpus

    def scaled_point(batch: int, context: int, power_watts: float) -> dict[str, float | int]:
        memory_ms = step_base_ms + per_position_ms * batch * context + fitted.step_ms_per_sequence * batch
        compute_ms = 2.0 * active_params_billion * 1e9 * batch / flops_per_s * 1000.0
        return {
            "batch": batch,
            "contextTokens": context,
            "stepTimeMs": round(max(memory_ms, compute_ms), 4),
            "powerWatts": round(min(power_watts * tdp_ratio, target.tdp_watts * gpus), 2),
        }

    points = _points_that_fit(base.spec.points, kv, scaled_point)
    if len({p["batch"] for p in points}) < 2:
        raise ValueError(f"scaling {base.metadata['name']} to {target.short_name}: fewer than 2 batches fit its memory")
    idle = _scaled_idle_watts(fitted.idle_power_watts * tdp_ratio, target, gpus)
    base_name = str(base.metadata["name"])
    name = base_name.replace(f"-{slug(source.short_name)}-", f"-{slug(target.short_name)}-", 1)
    return _profile(
        name=f"{name.rsplit('-mlenergy-', 1)[0]}-scaled-{slug(source.short_name)}",
        model=base.spec.model,
        gpu_label=target.gpu_type,
        gpus=gpus,
        points=points,
        description=SCALED_ATTRIBUTION.format(
            base=base_name,
            base_gpu=source.short_name,
            gpu=target.short_name,
            overhead_ms=overhead_ms,
            weights_gb=weights_per_gpu / 1e9,
            per_seq_ns=remainder_ms * 1e6,
            bw=target.memory_bandwidth_gb_per_s,
            base_bw=source.memory_bandwidth_gb_per_s,
            mfu=PREFILL_MFU,
            tflops=target.bf16_dense_tflops,
            tdp_ratio=tdp_ratio,
            base_tdp=source.tdp_watts,
            tdp=target.tdp_watts,
            flops_ratio=flops_ratio,
        ),
        method="Fitted",
        idle_watts=round(idle, 1),
        prefill=round(fitted.prefill_tokens_per_s * flops_ratio, 1),
        basis="scaled",
        annotations={SCALED_FROM_ANNOTATION: base_name},
    )


def _scaled_idle_watts(scaled: float, target: GpuSpec, gpus: int) -> float:
    """Idle power on the target: the base's scaled by board power, and no less than the target's
    measured idle (an empty GPU draws that much; one holding weights draws no less)."""
    if target.idle_watts_measured is None:
        return scaled
    return max(scaled, target.idle_watts_measured * gpus)


def _points_that_fit(
    base_points: Sequence[ProfilePoint],
    kv: KvMemory | None,
    scaled_point: Callable[[int, int, float], dict[str, float | int]],
) -> list[dict[str, float | int]]:
    """The base's points scaled, up to the first batch the target's KV memory cannot hold at its context."""
    points: list[dict[str, float | int]] = []
    for point in base_points:
        fits = kv.max_batch(point.context_tokens) if kv is not None else point.batch
        if point.batch <= fits:
            points.append(scaled_point(point.batch, point.context_tokens, point.power_watts))
            continue
        # The first base batch the target cannot hold: end the profile at the largest batch that fits
        # at this context (power interpolated in batch), so that its largest batch is memory's, not
        # the base's sweep's.
        if points and fits > int(points[-1]["batch"]):
            previous = base_points[len(points) - 1]
            share = (fits - previous.batch) / (point.batch - previous.batch)
            power = previous.power_watts + share * (point.power_watts - previous.power_watts)
            points.append(scaled_point(fits, point.context_tokens, power))
        break
    return points


def kv_memory_of(profile: GPUProfile, gpu_type: str | None = None) -> KvMemory | None:
    """The KV-memory bound of a profile's model on its GPU type (or on `gpu_type`), from the shipped data."""
    gpu = gpu_specs().get(gpu_type or profile.spec.gpu_type)
    architecture = model_architectures().get(profile.spec.model)
    if gpu is None or architecture is None:
        return None
    return KvMemory(architecture, gpu.memory_bytes, profile.spec.gpus_per_replica)


def scaled_profiles(
    measured: Sequence[GPUProfile], selection: Sequence[Scaling] = SCALED_SELECTION
) -> list[GPUProfile]:
    """The scaled profiles of `selection`, from the measured profiles they name."""
    by_name = {str(p.metadata["name"]): p for p in measured}
    profiles = []
    for chosen in selection:
        if chosen.base not in by_name:
            raise ValueError(f"scaled profile base {chosen.base} is not among the measured profiles")
        base = by_name[chosen.base]
        target = gpu_specs()[gpu_product_label(chosen.gpu)]
        kv = kv_memory_of(base, target.gpu_type)
        architecture = model_architectures()[base.spec.model]
        profiles.append(scaled_profile(base, target, chosen.active_params_billion, architecture=architecture, kv=kv))
    return profiles


def default_profiles(
    measured_rows: Iterable[Mapping[str, str]],
    v3_rows: Iterable[Mapping[str, str]],
    v2_rows: Iterable[Mapping[str, str]],
) -> list[GPUProfile]:
    """Every profile gridshift ships: measured (ours, ML.ENERGY v3 and v2), then scaled."""
    measured = [measured_h100_profile(measured_rows)]
    measured += mlenergy_v3_profiles(v3_rows)
    measured += mlenergy_v2_profiles(v2_rows)
    return measured + scaled_profiles(measured)


CROSS_CHECKS: tuple[tuple[str, str, float], ...] = (
    ("meta-llama-3-1-8b-instruct-h100-tp1-mlenergy-v2", "meta-llama-3-1-8b-instruct-a100-40gb-tp1-mlenergy-v2", 8.0),
    ("mistral-7b-instruct-v0-3-h100-tp1-mlenergy-v2", "mistral-7b-instruct-v0-3-a100-40gb-tp1-mlenergy-v2", 7.2),
    ("llama-3-1-8b-instruct-h100-tp1-mlenergy-v3", "llama-3-1-8b-instruct-b200-tp1-mlenergy-v3", 8.0),
    ("qwen3-8b-h100-tp1-mlenergy-v3", "qwen3-8b-b200-tp1-mlenergy-v3", 8.0),
    ("gpt-oss-20b-h100-tp1-mlenergy-v3", "gpt-oss-20b-b200-tp1-mlenergy-v3", 3.6),
)
"""(base, measured target, active parameters): the scaling applied where both ends are measured, with
the same model, release and TP size (no 70B pair: ML.ENERGY ran 70B at TP 4 on H100, TP 2 on B200 and
TP 8 on A100)."""
