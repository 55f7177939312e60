"""Regenerate operator/gridshift/data/profiles/*.yaml from ../shared/data and print the fit report.

Usage (from the repo root): .venv/bin/python bench/fit_default_profiles.py [--check]
--check writes nothing and exits 1 if a shipped file differs from what the data gives.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from gridshift.profiles_catalog import performance_model
from gridshift_dev.profile_fit import (
    measured_h100_profile,
    mlenergy_v2_profiles,
    mlenergy_v3_profiles,
    profile_file_name,
    render_profile_yaml,
)

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "operator" / "gridshift" / "data" / "profiles"


def shared_data() -> Path:
    return Path(os.environ.get("GRIDSHIFT_SHARED_DATA", REPO / ".." / "shared" / "data"))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def generate() -> dict[str, str]:
    data = shared_data()
    profiles = [measured_h100_profile(read_csv(data / "h100-llama3-8b-power" / "measurements.csv"))]
    profiles += mlenergy_v3_profiles(read_csv(data / "gpu-energy-mlenergy" / "DERIVED_v3_llm_configs_flat.csv"))
    profiles += mlenergy_v2_profiles(read_csv(data / "gpu-energy-mlenergy" / "DERIVED_v2_llm_configs_flat.csv"))
    report = ["| profile | points | step a ms | b ns/pos | c ms/seq | max step error | max power error |"]
    report.append("|---|---|---|---|---|---|---|")
    for profile in profiles:
        model = performance_model(profile)
        step_errors = [
            abs(model.step_time_ms(p.batch, p.context_tokens) / p.step_time_ms - 1) for p in profile.spec.points
        ]
        power_errors = [abs(model.power_watts(p.batch) / p.power_watts - 1) for p in profile.spec.points]
        report.append(
            f"| {profile.metadata['name']} | {len(profile.spec.points)} | {model.step_base_ms:.2f} | "
            f"{model.step_ms_per_kv_position * 1e6:.1f} | {model.step_ms_per_sequence:.4f} | "
            f"{max(step_errors):.0%} | {max(power_errors):.0%} |"
        )
    print("\n".join(report), file=sys.stderr)
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
