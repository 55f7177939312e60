"""GPUProfiles as the planner sees them: `performance_model` fits one (API object in, PerformanceModel
out), and the profiles gridshift ships are GPUProfile YAML files in gridshift/data/profiles/, read with
importlib.resources. How they are made from the measured data sets is build-time code
(gridshift_dev.profile_fit, run by bench/fit_default_profiles.py).

The same package data holds what a profile alone does not say: GPU datasheet figures (gpus.yaml),
model architectures (models.yaml), which together give the KV-memory batch limit
(gridshift.planner.kvmemory), and a snapshot of public GPU list prices for benchmarks (gpu_prices.yaml).
A profile whose GPU type or model is not in those files keeps the batch limit its points give.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from gridshift.api import GPUProfile
from gridshift.api.gpu_profile import GPUProfileSpec
from gridshift.numerals import shown
from gridshift.planner.kvmemory import KvMemory, ModelArchitecture
from gridshift.planner.profiles import PerformanceModel, ProfilePoint, fit_performance_model

PROFILES_PACKAGE = "gridshift.data"
PROFILES_DIR = "profiles"
GPUS_FILE = "gpus.yaml"
MODELS_FILE = "models.yaml"
GPU_PRICES_FILE = "gpu_prices.yaml"
PROFILE_BASIS_LABEL = "gridshift.dev/profile-basis"
"""metadata.labels key of every shipped profile: `measured` (fitted to measured points) or `scaled`
(a measured profile scaled to another GPU type by datasheet figures)."""


@dataclass(frozen=True)
class GpuSpec:
    """Datasheet figures of one GPU type (gpus.yaml; units there)."""

    gpu_type: str
    short_name: str
    memory_gb: float
    memory_mib_reported: float
    memory_mib_cuda: float
    memory_bandwidth_gb_per_s: float
    bf16_dense_tflops: float
    fp8_dense_tflops: float
    tdp_watts: float
    idle_watts_measured: float | None
    source: str

    @property
    def memory_bytes(self) -> float:
        """The memory CUDA reports (what vLLM's --gpu-memory-utilization is a fraction of), bytes: the
        nvidia-smi total less the driver-reserved part. Found in review: this was the nvidia-smi total,
        470 MiB more than vLLM sees on an L4, so the KV limit and --max-model-len overstated the cache."""
        return self.memory_mib_cuda * 2**20


@dataclass(frozen=True)
class GpuListPrice:
    """One GPU type's public on-demand price per GPU-hour (gpu_prices.yaml: a list price snapshot)."""

    gpu_type: str
    usd_per_gpu_hour: float
    instance: str
    source: str
    snapshot_date: str
    estimate: bool


def _read(name: str) -> Any:
    return yaml.safe_load(resources.files(PROFILES_PACKAGE).joinpath(name).read_text())


def _field(entry: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in entry:
        raise ValueError(f"{where}: missing field {key}")
    return entry[key]


def _positive(entry: Mapping[str, Any], key: str, where: str) -> float:
    value = _field(entry, key, where)
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{where}.{key} must be a number > 0, got {_quoted(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int past any float: YAML reads 400 digits as one (not shown: past 4,300 digits
        # Python refuses to print it)
        raise ValueError(f"{where}.{key} must be a finite number, got a number beyond any float") from None
    if not math.isfinite(number):  # YAML's .inf
        raise ValueError(f"{where}.{key} must be a finite number, got {_quoted(value)}")
    return number


def _count(entry: Mapping[str, Any], key: str, where: str, *, least: int) -> int:
    """A count in a data file, at least `least` and at most 2**53: an int, or a float with no fraction (YAML's
    4096.0); never a bool, a string, NaN or 1.7. Found in review: int() read sliding_window_layers: 1.7 as 1, and
    "4" and true; a 400-digit count (YAML reads it as one int) was kept and crashed the KV-memory arithmetic later,
    naming no file; 0.5 layers was said not to be "> 0". 2**53: every count up to it is exact as a float, which the
    planner's arithmetic turns it into, and any real count is far below it."""
    value = _field(entry, key, where)
    wanted = f"{where}.{key} must be a whole number >= {least}"
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or not value >= least:
        raise ValueError(f"{wanted}, got {_quoted(value)}")
    if value > _LARGEST_COUNT:  # not shown: a 5,000-digit int cannot even be printed (Python's int limit)
        raise ValueError(f"{wanted} and at most 2**53, got a number beyond it")
    return int(value)


_LARGEST_COUNT = 2**53


def _quoted(value: object) -> str:
    """A data file's value as its error quotes it: an int beyond 2**53 by its size alone (YAML reads 4,000 hex
    digits as one int, which Python then refuses to print: found in review, a negative one raised Python's digit
    limit error naming no file), anything else as gridshift.numerals.shown quotes it."""
    if isinstance(value, int) and abs(value) > _LARGEST_COUNT:
        return "a number below -2**53" if value < 0 else "a number beyond 2**53"
    try:
        return shown(value)
    except ValueError:  # a list or map holding such an int (review)
        return f"a {type(value).__name__} holding a number too long to show"


def parse_gpu_specs(document: Mapping[str, Any], where: str = GPUS_FILE) -> dict[str, GpuSpec]:
    """gpus.yaml's content as GpuSpecs keyed by GPU type (the node label value)."""
    specs: dict[str, GpuSpec] = {}
    for gpu_type, entry in _field(document, "gpus", where).items():
        at = f"{where} gpus.{gpu_type}"
        idle = entry.get("idle_watts_measured")
        specs[gpu_type] = GpuSpec(
            gpu_type=gpu_type,
            short_name=str(_field(entry, "short_name", at)),
            memory_gb=_positive(entry, "memory_gb", at),
            memory_mib_reported=_positive(entry, "memory_mib_reported", at),
            memory_mib_cuda=_positive(entry, "memory_mib_cuda", at),
            memory_bandwidth_gb_per_s=_positive(entry, "memory_bandwidth_gb_per_s", at),
            bf16_dense_tflops=_positive(entry, "bf16_dense_tflops", at),
            fp8_dense_tflops=_positive(entry, "fp8_dense_tflops", at),
            tdp_watts=_positive(entry, "tdp_watts", at),
            idle_watts_measured=None if idle is None else _positive(entry, "idle_watts_measured", at),
            source=str(_field(entry, "source", at)),
        )
    return specs


def parse_model_architectures(document: Mapping[str, Any], where: str = MODELS_FILE) -> dict[str, ModelArchitecture]:
    """models.yaml's content as ModelArchitectures keyed by every model id they list."""
    architectures: dict[str, ModelArchitecture] = {}
    for index, entry in enumerate(_field(document, "models", where)):
        at = f"{where} models[{index}]"
        architecture = _model_architecture(entry, at)
        for model_id in _field(entry, "ids", at):
            if model_id in architectures:
                raise ValueError(f"{at}.ids: {model_id} is listed twice")
            architectures[model_id] = architecture
    return architectures


def _model_architecture(entry: Mapping[str, Any], at: str) -> ModelArchitecture:
    """One models.yaml entry; a field left out or left empty (null) takes its default. Each field's read names
    the file, entry and field itself; what relates fields to each other (ModelArchitecture's own checks) is
    named by entry here."""

    def given(key: str) -> bool:
        return entry.get(key) is not None

    parameters_billion = _positive(entry, "parameters_billion", at)
    layers = _count(entry, "layers", at, least=1)
    kv_heads = _count(entry, "kv_heads", at, least=1)
    head_dim = _count(entry, "head_dim", at, least=1)
    weight_bytes = _positive(entry, "weight_bytes_per_parameter", at) if given("weight_bytes_per_parameter") else 2.0
    weights_bytes = _positive(entry, "weights_gb", at) * 1e9 if given("weights_gb") else None
    window_layers = _count(entry, "sliding_window_layers", at, least=0) if given("sliding_window_layers") else 0
    window_tokens = _count(entry, "sliding_window_tokens", at, least=0) if given("sliding_window_tokens") else 0
    max_context = _count(entry, "max_context_tokens", at, least=1) if given("max_context_tokens") else None
    try:
        return ModelArchitecture(
            parameters_billion=parameters_billion,
            layers=layers,
            kv_heads=kv_heads,
            head_dim=head_dim,
            weight_bytes_per_parameter=weight_bytes,
            weights_bytes_override=weights_bytes,
            sliding_window_layers=window_layers,
            sliding_window_tokens=window_tokens,
            max_context_tokens=max_context,
        )
    except ValueError as error:
        raise ValueError(f"{at}: {error}") from None


@functools.cache
def gpu_specs() -> Mapping[str, GpuSpec]:
    """The shipped GPU datasheet figures, keyed by GPU type."""
    return parse_gpu_specs(_read(GPUS_FILE))


@functools.cache
def model_architectures() -> Mapping[str, ModelArchitecture]:
    """The shipped model architectures, keyed by model id."""
    return parse_model_architectures(_read(MODELS_FILE))


@functools.cache
def gpu_list_prices() -> Mapping[str, GpuListPrice]:
    """The shipped public on-demand GPU prices (a list price snapshot, for benchmarks), keyed by GPU type."""
    document = _read(GPU_PRICES_FILE)
    date = str(_field(document, "snapshot_date", GPU_PRICES_FILE))
    return {
        gpu_type: GpuListPrice(
            gpu_type=gpu_type,
            usd_per_gpu_hour=_positive(entry, "usd_per_gpu_hour", f"{GPU_PRICES_FILE} gpus.{gpu_type}"),
            instance=str(entry.get("instance", "")),
            source=str(_field(entry, "source", f"{GPU_PRICES_FILE} gpus.{gpu_type}")),
            snapshot_date=date,
            estimate=bool(entry.get("estimate", False)),
        )
        for gpu_type, entry in _field(document, "gpus", GPU_PRICES_FILE).items()
    }


def kv_memory_for(model: str, gpu_type: str, gpus: int) -> KvMemory | None:
    """The memory side of a (model, GPU type, GPUs per replica), or None where the shipped data does
    not know the GPU's memory or the model's architecture (the batch limit is then the profile's)."""
    gpu = gpu_specs().get(gpu_type)
    architecture = model_architectures().get(model)
    if gpu is None or architecture is None:
        return None
    return KvMemory(architecture=architecture, gpu_memory_bytes=gpu.memory_bytes, gpus=gpus)


def load_default_profiles() -> tuple[GPUProfile, ...]:
    """The shipped GPUProfiles, sorted by name."""
    directory = resources.files(PROFILES_PACKAGE).joinpath(PROFILES_DIR)
    profiles = []
    for entry in sorted(directory.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            profiles.append(GPUProfile.model_validate(yaml.safe_load(entry.read_text())))
    return tuple(profiles)


def default_performance_models() -> tuple[PerformanceModel, ...]:
    """The shipped profiles, fitted."""
    return tuple(performance_model(profile) for profile in load_default_profiles())


def _labels(profile: GPUProfile) -> Mapping[str, object]:
    labels = profile.metadata.get("labels")
    return labels if isinstance(labels, dict) else {}


POWER_ABOVE_BOARD_TOLERANCE = 1.1
"""A point's mean power may exceed the GPUs' board power (TDP x gpusPerReplica) by this factor (a mean over a
phase, sampled, stays below TDP on every shipped measurement) before the profile is refused as implausible."""


def _plausible(spec: GPUProfileSpec) -> None:
    """ValueError naming the field where the profile cannot be right for its GPU type's datasheet: power
    above the board power of its GPUs (kW written as W? a node's power for a replica's?), or an idle power
    above every measured point's. Found in review: 5,000-7,000 W on an L4 (72 W) and an idle of 5,000 W were
    Ready, and the planner priced that GPU from them."""
    board = gpu_specs().get(spec.gpu_type)
    if board is not None:
        limit = board.tdp_watts * spec.gpus_per_replica * POWER_ABOVE_BOARD_TOLERANCE
        for index, point in enumerate(spec.points):
            if point.power_watts > limit:
                raise ValueError(
                    f"points[{index}].powerWatts: {point.power_watts:g} W is above the board power of "
                    f"{spec.gpus_per_replica} x {board.short_name} ({board.tdp_watts:g} W each, +10%): the power "
                    "of the replica's GPUs, in W"
                )
    highest = max(point.power_watts for point in spec.points)
    if spec.idle_power_watts is not None and spec.idle_power_watts > highest:
        raise ValueError(
            f"idlePowerWatts: {spec.idle_power_watts:g} W is above every measured point's power (at most "
            f"{highest:g} W): idle is the replica's GPUs holding the model with nothing to do"
        )


def performance_model(profile: GPUProfile) -> PerformanceModel:
    """The performance model a GPUProfile object describes, with its KV-memory bound where known; ValueError
    naming the field where it cannot be fitted or cannot be right for its GPU type (_plausible)."""
    spec = profile.spec
    points = [
        ProfilePoint(
            batch=p.batch,
            context_tokens=p.context_tokens,
            step_time_ms=p.step_time_ms,
            power_watts=p.power_watts,
            prefill_tokens_per_s=p.prefill_tokens_per_second,
        )
        for p in spec.points
    ]
    try:
        _plausible(spec)
        return fit_performance_model(
            points,
            model=spec.model,
            gpu_type=spec.gpu_type,
            gpus_per_replica=spec.gpus_per_replica,
            idle_power_watts=spec.idle_power_watts,
            prefill_tokens_per_s=spec.prefill_tokens_per_second,
            kv_memory=kv_memory_for(spec.model, spec.gpu_type, spec.gpus_per_replica),
            scaled=_labels(profile).get(PROFILE_BASIS_LABEL) == "scaled",
        )
    except ValueError as error:
        name = profile.metadata.get("name", "<unnamed>")
        raise ValueError(f"GPUProfile {name}: spec.{error}") from None
