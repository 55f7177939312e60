"""Profiles: the fit of step time and power, its quality on real data, and the shipped catalog."""

from __future__ import annotations

import csv
from dataclasses import replace

import pytest

from gridshift.api import GPUProfile
from gridshift.planner.profiles import (
    GPU_PRODUCT_LABELS,
    ProfilePoint,
    fit_performance_model,
    gpu_product_label,
)
from gridshift.profiles_catalog import default_performance_models, load_default_profiles, performance_model
from gridshift_dev.profile_fit import default_profiles, profile_file_name, render_profile_yaml
from tests.planner.planner_world import H100, MODEL, REPO, fitted_measured_model, measured_points, shared_data


def test_measured_h100_fit_predicts_held_out_points_within_ten_percent() -> None:
    points = measured_points()
    assert len(points) >= 15
    for held_out in range(len(points)):
        training = points[:held_out] + points[held_out + 1 :]
        model = fit_performance_model(training, model=MODEL, gpu_type=H100, prefill_tokens_per_s=19000.0)
        point = points[held_out]
        predicted = model.step_time_ms(point.batch, point.context_tokens)
        assert predicted == pytest.approx(point.step_time_ms, rel=0.10), point


def test_measured_h100_fit_has_the_shape_the_readme_reports() -> None:
    model = fitted_measured_model()
    # README: about 7.6 ms + 62 ns per (batch x context) position.
    assert 7.0 < model.step_base_ms < 8.5
    assert 40e-6 < model.step_ms_per_kv_position < 70e-6
    assert model.power_watts(512) == pytest.approx(599.8, rel=0.02)
    assert model.power_watts(8) < model.power_watts(128) < model.power_watts(512)


def test_measured_decoder_energy_per_token_matches_the_measurement() -> None:
    # shared/data README: the measured decoder at batch 32, context 2048 is 0.154 J/token.
    assert fitted_measured_model().joules_per_token(32, 2048) == pytest.approx(0.154, rel=0.05)


def test_shipped_mlenergy_llama_8b_h100_profile_matches_the_cross_check() -> None:
    models = {(m.model, m.gpu_type, m.gpus_per_replica): m for m in default_performance_models()}
    model = models[("meta-llama/Llama-3.1-8B-Instruct", H100, 1)]
    # ML.ENERGY v3: Llama-3.1-8B on one H100 at max_num_seqs 32 is 0.165 J/token (about 695 context).
    assert model.joules_per_token(32, 695) == pytest.approx(0.165, rel=0.05)


def test_fit_refuses_too_few_points() -> None:
    with pytest.raises(ValueError, match="points: need at least 2"):
        fit_performance_model([ProfilePoint(8, 1024, 9.0, 400.0)], model="m", gpu_type=H100, prefill_tokens_per_s=1e4)


def test_fit_refuses_a_single_batch_size() -> None:
    points = [ProfilePoint(8, 1024, 9.0, 400.0), ProfilePoint(8, 4096, 12.0, 400.0)]
    with pytest.raises(ValueError, match="two distinct batch sizes"):
        fit_performance_model(points, model="m", gpu_type=H100, prefill_tokens_per_s=1e4)


def test_fit_names_the_bad_field() -> None:
    points = [ProfilePoint(8, 1024, 9.0, 400.0), ProfilePoint(16, 1024, -1.0, 400.0)]
    with pytest.raises(ValueError, match=r"points\[1\]\.step_time_ms"):
        fit_performance_model(points, model="m", gpu_type=H100, prefill_tokens_per_s=1e4)


@pytest.mark.parametrize(
    ("tiny", "field"),
    [((5e-324, 400.0), r"points\[1\]\.step_time_ms is 4.94e-324"), ((10.0, 5e-324), r"points\[1\]\.power_watts")],
)
def test_fit_names_a_value_too_small_to_weigh(tiny: tuple[float, float], field: str) -> None:
    # Found in review: refused as scipy's "array must not contain infs or NaNs", naming no field.
    points = [ProfilePoint(8, 1024, 9.0, 400.0), ProfilePoint(16, 4096, *tiny)]
    with pytest.raises(ValueError, match=field):
        fit_performance_model(points, model="m", gpu_type=H100, prefill_tokens_per_s=1e4)


def test_fit_needs_a_prefill_rate_from_somewhere() -> None:
    points = [ProfilePoint(8, 1024, 9.0, 400.0), ProfilePoint(16, 1024, 10.0, 420.0)]
    with pytest.raises(ValueError, match="prefill_tokens_per_s"):
        fit_performance_model(points, model="m", gpu_type=H100)
    with_prefill = [replace(p, prefill_tokens_per_s=12000.0) for p in points]
    assert fit_performance_model(with_prefill, model="m", gpu_type=H100).prefill_tokens_per_s == 12000.0


def test_one_context_puts_the_slope_on_kv_reads() -> None:
    points = [ProfilePoint(b, 1000, 8.0 + 0.1 * b, 400.0 + b) for b in (1, 8, 32, 128)]
    model = fit_performance_model(points, model="m", gpu_type=H100, prefill_tokens_per_s=1e4)
    assert model.step_ms_per_sequence == 0.0
    assert model.step_time_ms(64, 1000) == pytest.approx(8.0 + 6.4, rel=1e-6)
    assert model.step_time_ms(64, 2000) > model.step_time_ms(64, 1000)


def test_performance_model_fits_a_gpu_profile_and_reports_bad_profiles_by_name() -> None:
    profile = GPUProfile.model_validate(
        {
            "metadata": {"name": "tiny"},
            "spec": {
                "model": "m",
                "gpuType": H100,
                "idlePowerWatts": 100,
                "prefillTokensPerSecond": 15000,
                "source": {"method": "Measured"},
                "points": [
                    {"batch": 1, "contextTokens": 1024, "stepTimeMs": 8.0, "powerWatts": 380},
                    {"batch": 64, "contextTokens": 1024, "stepTimeMs": 12.0, "powerWatts": 450},
                    {"batch": 64, "contextTokens": 4096, "stepTimeMs": 22.0, "powerWatts": 450},
                ],
            },
        }
    )
    model = performance_model(profile)
    assert model.idle_power_watts == 100
    assert model.max_batch == 64
    assert model.step_time_ms(64, 4096) == pytest.approx(22.0, rel=0.05)
    no_prefill = profile.model_copy(
        update={"spec": profile.spec.model_copy(update={"prefill_tokens_per_second": None})}
    )
    with pytest.raises(ValueError, match=r"GPUProfile tiny: spec\.prefill_tokens_per_s"):
        performance_model(no_prefill)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("H100", "NVIDIA-H100-80GB-HBM3"),
        ("NVIDIA H100 80GB HBM3", "NVIDIA-H100-80GB-HBM3"),
        ("NVIDIA A100-SXM4-40GB", "NVIDIA-A100-SXM4-40GB"),
        ("A100", "NVIDIA-A100-SXM4-80GB"),
        ("B200", "NVIDIA-B200"),
        ("NVIDIA-L40S", "NVIDIA-L40S"),
    ],
)
def test_gpu_names_map_to_node_labels(name: str, label: str) -> None:
    assert gpu_product_label(name) == label
    assert label in GPU_PRODUCT_LABELS.values()


def test_unknown_gpu_names_are_refused() -> None:
    with pytest.raises(ValueError, match="'T4'"):
        gpu_product_label("T4")


def test_shipped_profiles_load_fit_and_cover_the_gpu_types() -> None:
    profiles = load_default_profiles()
    assert len(profiles) >= 10
    gpu_types = {p.spec.gpu_type for p in profiles}
    assert {"NVIDIA-H100-80GB-HBM3", "NVIDIA-B200", "NVIDIA-A100-SXM4-40GB"} <= gpu_types
    models = default_performance_models()
    assert len({(m.model, m.gpu_type, m.gpus_per_replica) for m in models}) == len(models)
    for model in models:
        assert model.step_time_ms(1, 1000) > 0
        assert model.joules_per_token(32, 1000) > 0


def test_shipped_profiles_are_what_the_data_gives() -> None:
    data = shared_data()
    if not data.is_dir():
        pytest.skip("shared data not present")

    def rows(*parts: str) -> list[dict[str, str]]:
        with data.joinpath(*parts).open(newline="") as handle:
            return list(csv.DictReader(handle))

    expected = default_profiles(
        rows("h100-llama3-8b-power", "measurements.csv"),
        rows("gpu-energy-mlenergy", "DERIVED_v3_llm_configs_flat.csv"),
        rows("gpu-energy-mlenergy", "DERIVED_v2_llm_configs_flat.csv"),
    )
    shipped = REPO / "operator" / "gridshift" / "data" / "profiles"
    for profile in expected:
        path = shipped / profile_file_name(profile)
        assert path.read_text() == render_profile_yaml(profile), f"{path} is stale: run bench/fit_default_profiles.py"
    assert {p.name for p in shipped.glob("*.yaml")} == {profile_file_name(p) for p in expected}
