"""GPUProfiles as the planner sees them: `performance_model` fits one (API object in, PerformanceModel
out), and the profiles gridshift ships are GPUProfile YAML files in gridshift/data/profiles/, read with
importlib.resources. How they are made from the measured data sets is build-time code
(gridshift_dev.profile_fit, run by bench/fit_default_profiles.py)."""

from __future__ import annotations

from importlib import resources

import yaml

from gridshift.api import GPUProfile
from gridshift.planner.profiles import PerformanceModel, ProfilePoint, fit_performance_model

PROFILES_PACKAGE = "gridshift.data"
PROFILES_DIR = "profiles"


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


def performance_model(profile: GPUProfile) -> PerformanceModel:
    """The performance model a GPUProfile object describes."""
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
        return fit_performance_model(
            points,
            model=spec.model,
            gpu_type=spec.gpu_type,
            gpus_per_replica=spec.gpus_per_replica,
            idle_power_watts=spec.idle_power_watts,
            prefill_tokens_per_s=spec.prefill_tokens_per_second,
        )
    except ValueError as error:
        name = profile.metadata.get("name", "<unnamed>")
        raise ValueError(f"GPUProfile {name}: spec.{error}") from None
