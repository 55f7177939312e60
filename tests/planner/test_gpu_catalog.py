"""The shipped GPU catalog: eight GPU types, each profile labelled measured or scaled, the datasheet,
architecture and list-price files it relies on, and how far the datasheet scaling is from measurements."""

from __future__ import annotations

import statistics

import pytest

from gridshift.planner.profiles import GPU_PRODUCT_LABELS, gpu_product_label
from gridshift.profiles_catalog import (
    default_performance_models,
    gpu_list_prices,
    gpu_specs,
    load_default_profiles,
    model_architectures,
    parse_gpu_specs,
    parse_model_architectures,
    performance_model,
)
from gridshift_dev.profile_fit import (
    CROSS_CHECKS,
    PROFILE_BASIS_LABEL,
    SCALED_FROM_ANNOTATION,
    kv_memory_of,
    scaled_profile,
)

EIGHT_GPUS = {"L4", "A10G", "L40S", "A100-40GB", "A100-80GB", "H100", "H200", "B200"}
LLAMA_31_8B = "meta-llama/Llama-3.1-8B-Instruct"


def test_llama_31_8b_ships_on_all_eight_gpu_types() -> None:
    types = {m.gpu_type for m in default_performance_models() if m.model == LLAMA_31_8B}
    assert types == {GPU_PRODUCT_LABELS[name] for name in EIGHT_GPUS}


def test_llama_31_70b_ships_where_it_fits_with_tensor_parallelism() -> None:
    found = {(m.gpu_type, m.gpus_per_replica) for m in default_performance_models() if "70B" in m.model}
    for gpu, tp in (("H100", 4), ("B200", 2), ("A100-40GB", 8), ("A100-80GB", 4), ("H200", 4)):
        assert (GPU_PRODUCT_LABELS[gpu], tp) in found


def test_every_profile_is_labelled_measured_or_scaled_and_scaled_ones_name_a_measured_base() -> None:
    profiles = load_default_profiles()
    by_name = {str(p.metadata["name"]): p for p in profiles}
    bases = set()
    for profile in profiles:
        labels = profile.metadata["labels"]
        assert isinstance(labels, dict)
        basis = labels[PROFILE_BASIS_LABEL]
        assert basis in ("measured", "scaled"), profile.metadata["name"]
        if basis == "scaled":
            annotations = profile.metadata["annotations"]
            assert isinstance(annotations, dict)
            base = by_name[annotations[SCALED_FROM_ANNOTATION]]
            assert base.metadata["labels"] == {PROFILE_BASIS_LABEL: "measured"}  # type: ignore[comparison-overlap]
            assert "Not measured" in profile.spec.source.description
            bases.add(base.spec.gpu_type)
    assert bases == {GPU_PRODUCT_LABELS["H100"]}


def test_scaled_profiles_follow_the_datasheets_ordering() -> None:
    # Decode at batch 8 is weight-read bound: slower where bandwidth is lower.
    models = {m.gpu_type: m for m in default_performance_models() if m.model == LLAMA_31_8B}
    order = ["L4", "A10G", "L40S", "A100-80GB", "H100", "H200"]
    steps = [models[GPU_PRODUCT_LABELS[name]].step_time_ms(8, 700) for name in order]
    assert steps == sorted(steps, reverse=True)
    # A 24 GB GPU holds 13 sequences of 2,048 tokens (22,563 MiB as CUDA sees it); an H200 twice an H100's.
    assert models[GPU_PRODUCT_LABELS["L4"]].batch_limit(2048) == 13
    h100 = models[GPU_PRODUCT_LABELS["H100"]].kv_memory
    h200 = models[GPU_PRODUCT_LABELS["H200"]].kv_memory
    assert h100 is not None and h200 is not None
    assert h200.max_batch(2048) > 1.9 * h100.max_batch(2048)


def test_datasheet_scaling_predicts_measured_step_times_within_a_quarter_at_the_median() -> None:
    # The README's cross-check: scale where both ends are measured and predict the measured points.
    profiles = {str(p.metadata["name"]): p for p in load_default_profiles()}
    for base_name, target_name, active in CROSS_CHECKS:
        base, target = profiles[base_name], profiles[target_name]
        gpu = gpu_specs()[target.spec.gpu_type]
        architecture = model_architectures()[base.spec.model]
        scaled = scaled_profile(base, gpu, active, architecture=architecture, kv=kv_memory_of(base, gpu.gpu_type))
        model = performance_model(scaled)
        errors = [abs(model.step_time_ms(p.batch, p.context_tokens) / p.step_time_ms - 1) for p in target.spec.points]
        assert statistics.median(errors) < 0.25, (base_name, target_name, statistics.median(errors))


def test_every_gpu_type_has_a_datasheet_entry_and_a_list_price() -> None:
    specs, prices = gpu_specs(), gpu_list_prices()
    shipped = {p.spec.gpu_type for p in load_default_profiles()}
    assert shipped == set(specs) == set(prices)
    for gpu_type, spec in specs.items():
        assert spec.source
        # Driver-reported memory is within 10% of the datasheet's figure.
        assert spec.memory_bytes == pytest.approx(spec.memory_gb * 1e9, rel=0.10), gpu_type
    assert all(p.snapshot_date and p.source for p in prices.values())
    assert prices["NVIDIA-L4"].usd_per_gpu_hour < prices["NVIDIA-A10G"].usd_per_gpu_hour
    assert prices["NVIDIA-H100-80GB-HBM3"].usd_per_gpu_hour < prices["NVIDIA-B200"].usd_per_gpu_hour


def test_new_gpu_names_map_to_their_node_labels() -> None:
    assert gpu_product_label("NVIDIA L4") == "NVIDIA-L4"
    assert gpu_product_label("NVIDIA L40S") == "NVIDIA-L40S"
    assert gpu_product_label("NVIDIA A10G") == "NVIDIA-A10G"
    assert gpu_product_label("NVIDIA H200") == "NVIDIA-H200"


def test_data_files_with_a_missing_or_bad_field_name_it() -> None:
    with pytest.raises(ValueError, match=r"gpus.NVIDIA-L4: missing field memory_mib_reported"):
        parse_gpu_specs({"gpus": {"NVIDIA-L4": {"short_name": "L4", "memory_gb": 24}}})
    good = {"ids": ["m"], "parameters_billion": 8, "layers": 32, "kv_heads": 8, "head_dim": 128, "source": "x"}
    with pytest.raises(ValueError, match=r"models\[0\].kv_heads must be a whole number >= 1, got 0"):
        parse_model_architectures({"models": [{**good, "kv_heads": 0}]})
    with pytest.raises(ValueError, match="m is listed twice"):
        parse_model_architectures({"models": [good, good]})


MODEL_ENTRY = {"ids": ["m"], "parameters_billion": 8, "layers": 32, "kv_heads": 8, "head_dim": 128, "source": "x"}


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("weight_bytes_per_parameter", "2", "must be a number > 0, got '2'"),
        ("weight_bytes_per_parameter", True, "must be a number > 0, got True"),
        ("weight_bytes_per_parameter", -2, "must be a number > 0, got -2"),
        ("weight_bytes_per_parameter", float("nan"), "must be a number > 0, got nan"),
        ("weight_bytes_per_parameter", float("inf"), "must be a finite number, got inf"),
        ("sliding_window_layers", 1.7, "must be a whole number >= 0, got 1.7"),
        ("sliding_window_layers", "4", "must be a whole number >= 0, got '4'"),
        ("sliding_window_layers", True, "must be a whole number >= 0, got True"),
        ("sliding_window_layers", -1, "must be a whole number >= 0, got -1"),
        ("sliding_window_layers", float("nan"), "must be a whole number >= 0, got nan"),
        ("sliding_window_tokens", -3, "must be a whole number >= 0, got -3"),
        ("sliding_window_tokens", "4096", "must be a whole number >= 0, got '4096'"),
        ("sliding_window_tokens", 0.5, "must be a whole number >= 0, got 0.5"),
        ("layers", 32.9, "must be a whole number >= 1, got 32.9"),
        ("max_context_tokens", 8192.5, "must be a whole number >= 1, got 8192.5"),
        ("layers", 0.5, "must be a whole number >= 1, got 0.5"),
        ("kv_heads", 0, "must be a whole number >= 1, got 0"),
        ("max_context_tokens", 10**400, "must be a whole number >= 1 and at most 2**53, got a number beyond it"),
        ("layers", 1e300, "must be a whole number >= 1 and at most 2**53, got a number beyond it"),
        ("sliding_window_tokens", float("inf"), "must be a whole number >= 0, got inf"),
        ("weights_gb", 10**400, "must be a finite number, got a number beyond any float"),
        # Python cannot print an int of 4,800 digits: its error named no file (review).
        pytest.param(
            "layers", -(16**4000), "must be a whole number >= 1, got a number below -2**53", id="layers-4800-digits"
        ),
        pytest.param(
            "layers",
            [-(16**4000)],
            "must be a whole number >= 1, got a list holding a number too long to show",
            id="list-4800-digits",
        ),
        pytest.param(
            "weights_gb", -(16**4000), "must be a number > 0, got a number below -2**53", id="weights-4800-digits"
        ),
        (
            "sliding_window_tokens",
            "x" * 100,
            "must be a whole number >= 0, got 'xxxxxxxxxxxxxxxxxxx... (100 characters)",
        ),
        ("layers", [1] * 50, "must be a whole number >= 1, got [1, 1, 1, 1, 1, 1, 1... (150 characters of list)"),
    ],
)
def test_a_model_field_that_is_no_count_or_size_is_refused_naming_file_entry_and_field(
    field: str, value: object, words: str
) -> None:
    # Found in review: float() and int() read a string "2", a true, 1.7 layers (as 1), a negative window and
    # an infinite size, and the KV-memory batch limit was computed from them.
    entries = [MODEL_ENTRY, {**MODEL_ENTRY, "ids": ["n"], field: value}]
    with pytest.raises(ValueError) as caught:
        parse_model_architectures({"models": entries})
    assert str(caught.value) == f"models.yaml models[1].{field} {words}"


def test_a_model_count_written_as_a_float_with_no_fraction_or_left_empty_reads_as_before() -> None:
    written = {**MODEL_ENTRY, "sliding_window_layers": 16, "sliding_window_tokens": 4096, "max_context_tokens": 8192}
    as_floats = {key: float(value) if isinstance(value, int) else value for key, value in written.items()}
    assert parse_model_architectures({"models": [as_floats]}) == parse_model_architectures({"models": [written]})
    empty = {**MODEL_ENTRY, "weight_bytes_per_parameter": None, "sliding_window_layers": None}
    assert parse_model_architectures({"models": [empty]}) == parse_model_architectures({"models": [MODEL_ENTRY]})


def test_synthetic_snapshots_scale_only_measured_profiles() -> None:
    # The scaled profiles sort before the measured ones they come from; were they bases, every
    # benchmark snapshot (and the planner's golden plans) would change with each shipped estimate.
    from gridshift.planner.synthetic import random_snapshot

    models = default_performance_models()
    measured = tuple(m for m in models if not m.scaled)
    assert len(measured) < len(models)
    for seed in (0, 1):
        assert random_snapshot(models, deployments=12, clusters=4, gpu_types=3, seed=seed) == random_snapshot(
            measured, deployments=12, clusters=4, gpu_types=3, seed=seed
        )
