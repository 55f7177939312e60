"""Which performance model drives a simulated replica: the operator's GPU profiles, with fallbacks.

The world uses the planner's own `PerformanceModel` (gridshift.planner.profiles), so a replica
in the world follows exactly the curves the operator plans with:

1. GPUProfile YAML/JSON files shipped in operator/gridshift/data/profiles/ (or a directory given),
   fitted with `gridshift.profiles_catalog.performance_model`;
2. else, for H100, a fit of the measured H100 Llama-3-8B points shipped in e2e/world/data/;
3. else a GPU type is derived from the H100 fit by memory bandwidth (decode reads the weights and
   KV cache every step, so step time scales with 1/bandwidth) and board power (see docs/world.md).

`ReplicaPerformance` adds what the world needs beyond the planner's model: prefill power and the
KV-cache size that bounds admission.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from gridshift.api import GPUProfile
from gridshift.planner.profiles import PerformanceModel, ProfilePoint, fit_performance_model
from gridshift.profiles_catalog import performance_model

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_PROFILES = REPO_ROOT / "operator" / "gridshift" / "data" / "profiles"
H100_MEASUREMENTS = Path(__file__).resolve().parent / "data" / "h100_llama3_8b_measurements.csv"
H100 = "NVIDIA-H100-80GB-HBM3"
DEFAULT_MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"
"""Model simulated when a pod names one no profile has: the model of the measured H100 profile."""


@dataclass(frozen=True)
class GpuSpecSheet:
    """Published figures used only to derive a GPU type with no measured profile from the H100."""

    memory_bandwidth_tb_per_s: float
    board_power_watts: float
    idle_power_watts: float
    """No process on the GPU: H100 measured (75.5 W); L40S and L4 from the recorded DCGM scrapes."""
    memory_gib: float
    dense_bf16_tflops: float


SPEC_SHEETS: dict[str, GpuSpecSheet] = {
    H100: GpuSpecSheet(3.35, 700.0, 75.5, 80.0, 989.0),
    "NVIDIA-H200": GpuSpecSheet(4.8, 700.0, 75.5, 141.0, 989.0),
    "NVIDIA-A100-SXM4-80GB": GpuSpecSheet(2.039, 400.0, 55.0, 80.0, 312.0),
    "NVIDIA-A100-SXM4-40GB": GpuSpecSheet(1.555, 400.0, 52.0, 40.0, 312.0),
    "NVIDIA-L40S": GpuSpecSheet(0.864, 350.0, 35.7, 48.0, 362.0),
    "NVIDIA-L4": GpuSpecSheet(0.3, 72.0, 16.4, 24.0, 121.0),
}

KV_BYTES_PER_TOKEN_LLAMA3_8B = 2 * 32 * 8 * 128 * 2
"""K and V x 32 layers x 8 KV heads x head dim 128 x 2 bytes (bf16) = 128 KiB per token."""
WEIGHTS_GIB_LLAMA3_8B = 14.96
GPU_MEMORY_UTILIZATION = 0.9
"""vLLM's default --gpu-memory-utilization: the KV cache gets what is left of this share after weights."""


@dataclass(frozen=True)
class ReplicaPerformance:
    """Everything the replica model needs about one (model, GPU type, GPUs per replica)."""

    model: PerformanceModel
    prefill_power_watts: float
    """Power of the replica while prefilling, W (prefill is compute-bound and runs near the board limit)."""
    kv_capacity_tokens: int
    """KV-cache positions the replica holds; admission waits when the running contexts would exceed it."""
    source: str
    """Where the figures came from, for /fleet and the docs."""

    def joules_per_output_token(self, batch: float, context_tokens: float, prompt_per_output: float) -> float:
        """Decode energy plus the prefill energy of the prompt tokens, per output token, J."""
        decode = self.model.joules_per_token(batch, context_tokens)
        prefill = prompt_per_output * self.prefill_power_watts / self.model.prefill_tokens_per_s
        return decode + prefill


def kv_capacity_tokens(gpu_type: str, gpus: int) -> int:
    sheet = SPEC_SHEETS.get(gpu_type, SPEC_SHEETS[H100])
    free_gib = gpus * sheet.memory_gib * GPU_MEMORY_UTILIZATION - WEIGHTS_GIB_LLAMA3_8B
    return max(16_384, int(free_gib * 2**30 / KV_BYTES_PER_TOKEN_LLAMA3_8B))


def _h100_measured() -> tuple[PerformanceModel, float]:
    points: list[ProfilePoint] = []
    prefill_rates: list[float] = []
    prefill_powers: list[float] = []
    idle_powers: list[float] = []
    with H100_MEASUREMENTS.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["kind"] == "decode":
                points.append(
                    ProfilePoint(
                        batch=int(row["batch"]),
                        context_tokens=int(row["context"]),
                        step_time_ms=float(row["step_ms"]),
                        power_watts=float(row["avg_power_w"]),
                    )
                )
            elif row["kind"] == "prefill":
                prefill_rates.append(float(row["tokens_per_s"]))
                prefill_powers.append(float(row["avg_power_w"]))
            elif row["kind"] == "idle":
                idle_powers.append(float(row["avg_power_w"]))
    # Prefill of prompts up to 2k tokens (the trace's range); the 8k-token row used an unfused
    # attention kernel that vLLM would not (see the data's README).
    short_prefill = [rate for rate in prefill_rates if rate > 10_000] or prefill_rates
    model = fit_performance_model(
        points,
        model=DEFAULT_MODEL,
        gpu_type=H100,
        gpus_per_replica=1,
        idle_power_watts=sum(idle_powers) / len(idle_powers),
        prefill_tokens_per_s=sum(short_prefill) / len(short_prefill),
    )
    return model, sum(prefill_powers) / len(prefill_powers)


def _derived(base: PerformanceModel, base_prefill_watts: float, gpu_type: str) -> ReplicaPerformance:
    ref, sheet = SPEC_SHEETS[H100], SPEC_SHEETS[gpu_type]
    slower = ref.memory_bandwidth_tb_per_s / sheet.memory_bandwidth_tb_per_s
    power = sheet.board_power_watts / ref.board_power_watts
    model = PerformanceModel(
        model=base.model,
        gpu_type=gpu_type,
        gpus_per_replica=1,
        step_base_ms=base.step_base_ms * slower,
        step_ms_per_kv_position=base.step_ms_per_kv_position * slower,
        step_ms_per_sequence=base.step_ms_per_sequence * ref.dense_bf16_tflops / sheet.dense_bf16_tflops,
        power_base_watts=base.power_base_watts * power,
        power_watts_per_sequence=base.power_watts_per_sequence * power,
        power_watts_per_log_batch=base.power_watts_per_log_batch * power,
        power_cap_watts=base.power_cap_watts * power,
        idle_power_watts=base.idle_power_watts * power,
        prefill_tokens_per_s=base.prefill_tokens_per_s * sheet.dense_bf16_tflops / ref.dense_bf16_tflops,
        max_batch=base.max_batch,
    )
    return ReplicaPerformance(
        model=model,
        prefill_power_watts=min(sheet.board_power_watts, base_prefill_watts * power),
        kv_capacity_tokens=kv_capacity_tokens(gpu_type, 1),
        source=f"derived from the measured H100 fit by bandwidth ({slower:.2f}x step) and board power ({power:.2f}x)",
    )


def _read_profiles(directory: Path) -> Iterable[tuple[Path, GPUProfile]]:
    if not directory.is_dir():
        return
    for path in sorted(directory.iterdir()):
        if path.suffix in (".yaml", ".yml"):
            documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        elif path.suffix == ".json":
            documents = [json.loads(path.read_text())]
        else:
            continue
        for document in documents:
            if isinstance(document, dict) and document.get("kind") == "GPUProfile":
                yield path, GPUProfile.model_validate(document)


def model_key(name: str) -> str:
    """A model name reduced for matching: 'meta-llama/Meta-Llama-3.1-8B-Instruct' -> 'llama318binstruct'."""
    base = name.rsplit("/", 1)[-1].lower()
    base = base.removeprefix("meta-")
    return re.sub(r"[^a-z0-9]", "", base)


def _preference(path: Path) -> int:
    # Our own measurement first, then the newer ML.ENERGY release, then the older one.
    name = path.name
    return 0 if "measured" in name else 1 if "v3" in name else 2


class ProfileCatalog:
    """Finds the `ReplicaPerformance` of a (model, GPU type, GPU count), caching fits.

    Lookup order: a shipped profile of that model, GPU type and count; the same for the default
    model; the measured H100 fit (default model) for H100; a spread over `gpus` of the one-GPU
    figures; a GPU type derived from the H100 by its spec sheet.
    """

    def __init__(self, profile_dir: Path | None = SHIPPED_PROFILES, *, default_model: str = DEFAULT_MODEL) -> None:
        self._h100_model, self._h100_prefill_watts = _h100_measured()
        self.default_model = default_model
        self._by_key: dict[tuple[str, str, int], ReplicaPerformance] = {}
        self._shipped: dict[tuple[str, str, int], tuple[PerformanceModel, str]] = {}
        found = list(_read_profiles(profile_dir)) if profile_dir is not None else []
        for path, profile in sorted(found, key=lambda item: _preference(item[0])):
            model = performance_model(profile)
            key = (model_key(model.model), model.gpu_type, model.gpus_per_replica)
            self._shipped.setdefault(key, (model, path.name))

    def performance(self, gpu_type: str, gpus: int, model: str | None = None) -> ReplicaPerformance:
        names = [name for name in (model, self.default_model) if name]
        for name in names:
            key = (model_key(name), gpu_type, gpus)
            if key in self._by_key:
                return self._by_key[key]
            shipped = self._shipped.get(key)
            if shipped is not None:
                fitted, path = shipped
                # Prefill runs near the board limit: the highest power the profile measured.
                found = ReplicaPerformance(
                    model=fitted,
                    prefill_power_watts=fitted.power_cap_watts,
                    kv_capacity_tokens=kv_capacity_tokens(gpu_type, gpus),
                    source=f"GPUProfile {path}",
                )
                self._by_key[key] = found
                return found
        key = (model_key(self.default_model), gpu_type, gpus)
        if key not in self._by_key:
            self._by_key[key] = self._fallback(gpu_type, gpus)
        return self._by_key[key]

    def _fallback(self, gpu_type: str, gpus: int) -> ReplicaPerformance:
        if gpu_type == H100 and gpus == 1:
            return ReplicaPerformance(
                model=self._h100_model,
                prefill_power_watts=self._h100_prefill_watts,
                kv_capacity_tokens=kv_capacity_tokens(H100, 1),
                source="fit of shared/data/h100-llama3-8b-power measurements",
            )
        if gpus != 1:
            return _tensor_parallel(self.performance(gpu_type, 1), gpus, gpu_type)
        if gpu_type in SPEC_SHEETS:
            return _derived(self._h100_model, self._h100_prefill_watts, gpu_type)
        return _derived(self._h100_model, self._h100_prefill_watts, H100)


def _tensor_parallel(one: ReplicaPerformance, gpus: int, gpu_type: str) -> ReplicaPerformance:
    """A replica spread over `gpus` GPUs: weights and KV reads split (faster steps), power summed.

    Tensor parallelism is not perfectly efficient; 80% per doubling is the usual figure for
    NVLink-connected GPUs on decode.
    """
    efficiency = 0.8 ** math.log2(gpus)
    speedup = gpus * efficiency
    base = one.model
    model = PerformanceModel(
        model=base.model,
        gpu_type=gpu_type,
        gpus_per_replica=gpus,
        step_base_ms=base.step_base_ms / speedup,
        step_ms_per_kv_position=base.step_ms_per_kv_position / speedup,
        step_ms_per_sequence=base.step_ms_per_sequence / speedup,
        power_base_watts=base.power_base_watts * gpus,
        power_watts_per_sequence=base.power_watts_per_sequence,
        power_watts_per_log_batch=base.power_watts_per_log_batch * gpus,
        power_cap_watts=base.power_cap_watts * gpus,
        idle_power_watts=base.idle_power_watts * gpus,
        prefill_tokens_per_s=base.prefill_tokens_per_s * speedup,
        max_batch=base.max_batch,
    )
    return ReplicaPerformance(
        model=model,
        prefill_power_watts=one.prefill_power_watts * gpus,
        kv_capacity_tokens=kv_capacity_tokens(gpu_type, gpus),
        source=f"{one.source}, x{gpus} tensor-parallel at {efficiency:.0%} efficiency",
    )


def idle_gpu_watts(gpu_type: str) -> float:
    """Power of a GPU no pod holds (no process, no CUDA context), W."""
    return SPEC_SHEETS.get(gpu_type, SPEC_SHEETS[H100]).idle_power_watts
