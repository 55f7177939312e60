"""Regenerate operator/gridshift/data/profiles/*.yaml from ../shared/data and print the fit report.

Usage (from the repo root): .venv/bin/python bench/fit_default_profiles.py [--check]
--check writes nothing and exits 1 if a shipped file differs from what the data gives.

The report (stderr) has two tables for the profile README: each shipped profile's fit residuals over
its own points, and the cross-check of the datasheet scaling where both GPUs are measured (scale the
base, fit it, predict the measured target's points).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
from pathlib import Path

from gridshift.api import GPUProfile
from gridshift.planner.profiles import PerformanceModel
from gridshift.profiles_catalog import gpu_specs, model_architectures, performance_model
from gridshift_dev.profile_fit import (
    CROSS_CHECKS,
    PROFILE_BASIS_LABEL,
    default_profiles,
    kv_memory_of,
    profile_file_name,
    render_profile_yaml,
    scaled_profile,
)

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "operator" / "gridshift" / "data" / "profiles"


def shared_data() -> Path:
    return Path(os.environ.get("GRIDSHIFT_SHARED_DATA", REPO / ".." / "shared" / "data"))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _errors(model: PerformanceModel, profile: GPUProfile) -> tuple[list[float], list[float]]:
    points = profile.spec.points
    step = [abs(model.step_time_ms(p.batch, p.context_tokens) / p.step_time_ms - 1) for p in points]
    power = [abs(model.power_watts(p.batch) / p.power_watts - 1) for p in points]
    return step, power


def fit_report(profiles: list[GPUProfile]) -> list[str]:
    report = ["| profile | basis | points | step a ms | b ns/pos | c ms/seq | max step error | max power error |"]
    report.append("|---|---|---|---|---|---|---|---|")
    for profile in profiles:
        model = performance_model(profile)
        step, power = _errors(model, profile)
        labels = profile.metadata.get("labels", {})
        basis = labels.get(PROFILE_BASIS_LABEL, "") if isinstance(labels, dict) else ""
        report.append(
            f"| {profile.metadata['name']} | {basis} | {len(profile.spec.points)} | {model.step_base_ms:.2f} | "
            f"{model.step_ms_per_kv_position * 1e6:.1f} | {model.step_ms_per_sequence:.4f} | "
            f"{max(step):.0%} | {max(power):.0%} |"
        )
    return report


def summary_report(profiles: list[GPUProfile]) -> list[str]:
    """One row per profile: GPU, model, TP, basis, source and fit quality (the README's first table)."""
    report = ["| GPU | model | TP | basis | source | fit quality |", "|---|---|---|---|---|---|"]
    for profile in sorted(profiles, key=lambda p: (p.spec.model, gpu_specs()[p.spec.gpu_type].memory_gb)):
        spec = profile.spec
        step, power = _errors(performance_model(profile), profile)
        labels = profile.metadata.get("labels", {})
        basis = labels.get(PROFILE_BASIS_LABEL, "") if isinstance(labels, dict) else ""
        name = str(profile.metadata["name"])
        if basis == "scaled":
            source = f"ML.ENERGY v3 {name.rsplit('-scaled-', 1)[1].upper()} run, scaled by datasheet"
            quality = "not measured: step +-25%, energy +-40% (cross-check below)"
        else:
            source = {"measured": "gridshift H100 measurement", "v3": "ML.ENERGY v3", "v2": "ML.ENERGY v2"}[
                name.rsplit("-", 1)[1]
            ]
            quality = f"residuals: step max {max(step):.0%}, power max {max(power):.0%} ({len(spec.points)} points)"
        short = gpu_specs()[spec.gpu_type].short_name
        report.append(f"| {short} | {spec.model} | {spec.gpus_per_replica} | {basis} | {source} | {quality} |")
    return report


def cross_check_report(profiles: list[GPUProfile]) -> list[str]:
    by_name = {str(p.metadata["name"]): p for p in profiles}
    report = [
        "| scaled | measured target | points | median step error | max step error | median power error "
        "| max power error | J/token scaled / measured (median) |"
    ]
    report.append("|---|---|---|---|---|---|---|---|")
    for base_name, target_name, active in CROSS_CHECKS:
        base, target = by_name[base_name], by_name[target_name]
        spec = gpu_specs()[target.spec.gpu_type]
        architecture = model_architectures()[base.spec.model]
        kv = kv_memory_of(base, spec.gpu_type)
        scaled = performance_model(scaled_profile(base, spec, active, architecture=architecture, kv=kv))
        step, power = _errors(scaled, target)
        energy = [
            scaled.joules_per_token(p.batch, p.context_tokens) / (p.power_watts * p.step_time_ms / 1000 / p.batch)
            for p in target.spec.points
        ]
        report.append(
            f"| {base_name} -> {spec.short_name} | {target_name} | {len(target.spec.points)} | "
            f"{statistics.median(step):.0%} | {max(step):.0%} | {statistics.median(power):.0%} | {max(power):.0%} | "
            f"{statistics.median(energy):.2f} |"
        )
    return report


def generate() -> dict[str, str]:
    data = shared_data()
    profiles = default_profiles(
        read_csv(data / "h100-llama3-8b-power" / "measurements.csv"),
        read_csv(data / "gpu-energy-mlenergy" / "DERIVED_v3_llm_configs_flat.csv"),
        read_csv(data / "gpu-energy-mlenergy" / "DERIVED_v2_llm_configs_flat.csv"),
    )
    print("\n".join(summary_report(profiles)), file=sys.stderr)
    print("", file=sys.stderr)
    print("\n".join(fit_report(profiles)), file=sys.stderr)
    print("", file=sys.stderr)
    print("\n".join(cross_check_report(profiles)), file=sys.stderr)
    return {profile_file_name(p): render_profile_yaml(p) for p in profiles}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if shipped files are stale")
    args = parser.parse_args()
    files = generate()
    stale = [n for n, t in files.items() if not (OUT / n).exists() or (OUT / n).read_text() != t]
    stale += [p.name for p in OUT.glob("*.yaml") if p.name not in files]
    if args.check:
        for name in stale:
            print(f"stale: {OUT / name}", file=sys.stderr)
        return 1 if stale else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for path in OUT.glob("*.yaml"):
        if path.name not in files:
            path.unlink()
    for name, text in files.items():
        (OUT / name).write_text(text)
    print(f"wrote {len(files)} profiles to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
