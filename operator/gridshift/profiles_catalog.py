"""The GPU profiles gridshift ships: GPUProfile YAML files in gridshift/data/profiles/, read with
importlib.resources. How they are made from the measured data sets is build-time code
(gridshift_dev.profile_fit, run by bench/fit_default_profiles.py)."""

from __future__ import annotations

from importlib import resources

import yaml

from gridshift.api import GPUProfile
from gridshift.planner.profiles import PerformanceModel, from_api

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
    return tuple(from_api(profile) for profile in load_default_profiles())
