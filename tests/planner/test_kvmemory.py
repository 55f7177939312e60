"""KV-memory batch limits: the arithmetic, its use by capacity, and --max-num-seqs never above it."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridshift.actuation.render import vllm_args
from gridshift.planner import PlannerSettings, Snapshot, make_plan
from gridshift.planner.capacity import CapacityLimit, replica_capacity
from gridshift.planner.kvmemory import KvMemory, ModelArchitecture
from gridshift.planner.problem import build_problem, max_num_seqs
from gridshift.planner.profiles import PerformanceModel
from gridshift.profiles_catalog import default_performance_models, gpu_specs, model_architectures
from tests.planner.planner_world import MODEL, cluster, deployment, flat_prices, snapshot, spec

L4 = "NVIDIA-L4"
A10G = "NVIDIA-A10G"
H100 = "NVIDIA-H100-80GB-HBM3"
LLAMA_31_8B = "meta-llama/Llama-3.1-8B-Instruct"
LLAMA_8B = ModelArchitecture(parameters_billion=8.03, layers=32, kv_heads=8, head_dim=128)
GIB = 2**30


def shipped(model: str, gpu_type: str, gpus: int = 1) -> PerformanceModel:
    found = {(m.model, m.gpu_type, m.gpus_per_replica): m for m in default_performance_models()}
    return found[(model, gpu_type, gpus)]


def test_kv_bytes_per_token_is_layers_times_kv_heads_times_head_dim_times_k_and_v_in_bf16() -> None:
    # Llama-3.1-8B: 32 x 8 x 128 x 2 x 2 bytes = 128 KiB per position; 16 positions per block.
    assert LLAMA_8B.kv_bytes_per_sequence(16) == 16 * 32 * 8 * 128 * 2 * 2
    # A sequence holds whole 16-token blocks.
    assert LLAMA_8B.kv_bytes_per_sequence(17) == LLAMA_8B.kv_bytes_per_sequence(32)
    # With more GPUs than KV heads vLLM replicates heads: 16 GPUs hold 16 heads' worth.
    assert LLAMA_8B.kv_bytes_per_sequence(16, gpus=16) == 2 * LLAMA_8B.kv_bytes_per_sequence(16, gpus=8)


def test_l4_batch_limit_is_what_is_left_of_90_percent_of_its_memory_after_weights_and_reserve() -> None:
    memory = 22563 * 2**20  # the L4's framebuffer CUDA sees: DCGM's free + used (shared/data/metrics-scrapes)
    assert gpu_specs()[L4].memory_bytes == memory
    kv = KvMemory(LLAMA_8B, gpu_memory_bytes=memory)
    budget = 0.9 * memory - 1.5 * GIB - 8.03e9 * 2
    assert kv.kv_budget_bytes == pytest.approx(budget)
    assert kv.max_batch(2048) == math.floor(budget / (2048 * 131072)) == 13
    assert kv.max_batch(512) == math.floor(budget / (512 * 131072))


def test_tensor_parallel_splits_weights_and_kv_over_the_gpus() -> None:
    llama_70b = model_architectures()["meta-llama/Llama-3.1-70B-Instruct"]
    h100 = gpu_specs()[H100].memory_bytes
    one = KvMemory(llama_70b, h100, gpus=1)
    four = KvMemory(llama_70b, h100, gpus=4)
    assert one.max_batch(1000) == 0  # 141 GB of weights do not fit one 80 GB GPU
    assert four.kv_budget_bytes == pytest.approx(4 * (0.9 * h100 - 1.5 * GIB) - 70.6e9 * 2)
    assert four.max_batch(1000) > 100


def test_sliding_window_layers_stop_growing_at_the_window() -> None:
    gpt_oss = model_architectures()["openai/gpt-oss-20b"]
    full_only = replace(gpt_oss, sliding_window_layers=0, sliding_window_tokens=0)
    assert gpt_oss.kv_bytes_per_sequence(128) == full_only.kv_bytes_per_sequence(128)
    assert gpt_oss.kv_bytes_per_sequence(8192) == pytest.approx(
        full_only.kv_bytes_per_sequence(8192) * (12 + 12 * 128 / 8192) / 24
    )


def test_architecture_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="kv_heads"):
        ModelArchitecture(parameters_billion=8, layers=32, kv_heads=0, head_dim=128)
    with pytest.raises(ValueError, match="memory_utilization"):
        KvMemory(LLAMA_8B, gpu_memory_bytes=1e9, memory_utilization=1.5)


def test_every_shipped_profile_knows_its_gpu_memory_and_model_architecture() -> None:
    # Otherwise its batch limit silently falls back to the profile's largest measured batch.
    for model in default_performance_models():
        assert model.kv_memory is not None, (model.model, model.gpu_type)
        assert model.kv_memory.max_batch(512) >= 1


def test_on_a_24_gb_gpu_long_contexts_make_the_batch_memory_bound_and_capacity_drops() -> None:
    planner = PlannerSettings()
    for gpu_type in (L4, A10G):
        model = shipped(LLAMA_31_8B, gpu_type)
        assert model.kv_memory is not None
        # Lax latency SLOs, 1,000-token prompts and outputs: only memory limits the batch.
        sizes = {"mean_prompt_tokens": 1000.0, "mean_output_tokens": 1000.0, "tpot_slo_ms": 400.0}
        bound = replica_capacity(model, ttft_slo_ms=60_000.0, settings=planner, **sizes)
        unbounded = replica_capacity(replace(model, kv_memory=None), ttft_slo_ms=60_000.0, settings=planner, **sizes)
        limit = model.batch_limit(2000)
        assert limit == model.kv_memory.max_batch(2000) < model.max_batch
        assert bound.limit == CapacityLimit.KV_MEMORY
        assert limit - 1 < bound.batch <= limit
        # Little's law at the KV-limited batch: rate = B / (O x step time at B), less the prefill share.
        assert bound.requests_per_second < 0.8 * unbounded.requests_per_second
        step_s = model.step_time_ms(bound.batch, 1500.0) / 1000.0
        assert bound.requests_per_second <= limit / (1000.0 * step_s)


def test_on_h100_with_short_contexts_the_kv_limit_changes_nothing() -> None:
    planner = PlannerSettings()
    for model_name in (LLAMA_31_8B, "meta-llama/Meta-Llama-3-8B-Instruct"):
        model = shipped(model_name, H100)
        sizes = {"mean_prompt_tokens": 256.0, "mean_output_tokens": 256.0, "tpot_slo_ms": 50.0, "ttft_slo_ms": 2000.0}
        with_kv = replica_capacity(model, settings=planner, **sizes)
        without = replica_capacity(replace(model, kv_memory=None), settings=planner, **sizes)
        assert with_kv == without
        assert with_kv.limit != CapacityLimit.KV_MEMORY


def _l4_world(prompt: float, output: float, rps: float) -> tuple[PerformanceModel, Snapshot]:
    l4 = replace(shipped(LLAMA_31_8B, L4), model=MODEL)
    h100 = replace(shipped(LLAMA_31_8B, H100), model=MODEL)
    d = deployment("chat", rps, prompt=prompt, output=output, gpu_types=(L4, H100), tpot_ms=400.0, ttft_ms=60_000.0)
    world = snapshot(
        [d],
        [cluster("a", gpus={L4: 16, H100: 4}, gpu_hour=1.0)],
        {"a": flat_prices(0.1)},
        profiles=(l4, h100),
    )
    return l4, world


@settings(max_examples=25, deadline=None)
@given(
    prompt=st.floats(min_value=64, max_value=6000),
    output=st.floats(min_value=16, max_value=2000),
    rps=st.floats(min_value=0.05, max_value=20),
)
def test_max_num_seqs_never_exceeds_the_kv_limit(prompt: float, output: float, rps: float) -> None:
    _, world = _l4_world(prompt, output, rps)
    problem = build_problem(world, PlannerSettings())
    for option in problem.deployments[0].options:
        assert 1 <= option.max_num_seqs <= max(1, option.model.batch_limit(prompt + output))


def test_the_rendered_max_num_seqs_on_an_l4_is_the_kv_limit_at_most() -> None:
    l4, world = _l4_world(1000.0, 1000.0, 2.0)
    plan = make_plan(world, PlannerSettings())
    seqs = plan.deployments[0].max_num_seqs[("a", L4)]
    limit = l4.batch_limit(2000.0)
    assert limit < l4.max_batch  # memory, not the profile, bounds it here
    assert seqs <= limit
    args = vllm_args(spec(gpu_types=(L4,)), seqs)
    assert int(args[args.index("--max-num-seqs") + 1]) <= limit


def test_max_num_seqs_clamps_to_the_kv_limit_even_when_handed_a_larger_batch() -> None:
    # Capacity never returns a batch above the limit; the clamp keeps --max-num-seqs safe if it ever did.
    l4 = shipped(LLAMA_31_8B, L4)
    limit = l4.batch_limit(2000.0)
    assert max_num_seqs(l4, limit + 5.3, limit) == limit
    assert max_num_seqs(l4, limit - 0.5, limit) == limit
    assert max_num_seqs(l4, 3.2, limit) == 4


def test_a_gpu_whose_kv_cache_cannot_hold_the_models_longest_sequence_gets_a_max_model_len() -> None:
    # Found in review: replicas of Llama-3.1-8B on an L4 or A10G were planned and rendered without
    # --max-model-len; vLLM refuses to start when one sequence of the model's 131,072 positions (16 GiB of KV)
    # does not fit in the KV cache (4.1 GB on an L4).
    for gpu_type in (L4, A10G):
        kv = shipped(LLAMA_31_8B, gpu_type).kv_memory
        assert kv is not None
        length = kv.max_model_len()
        assert length is not None and length % 16 == 0 and 16_000 < length < 131_072
        fits = kv.architecture.kv_bytes_per_sequence(length, kv.gpus)
        one_block_more = kv.architecture.kv_bytes_per_sequence(length + 16, kv.gpus)
        assert fits <= kv.kv_budget_bytes < one_block_more
    # Where the model's own maximum fits (H100), or the architecture does not say it, vLLM's default stays.
    h100_kv = shipped(LLAMA_31_8B, H100).kv_memory
    assert h100_kv is not None and h100_kv.max_model_len() is None
    l4_kv = shipped(LLAMA_31_8B, L4).kv_memory
    assert l4_kv is not None
    assert replace(l4_kv, architecture=replace(l4_kv.architecture, max_context_tokens=None)).max_model_len() is None
    # A model whose maximum is short enough fits the same L4: Llama-3-8B's 8,192.
    llama3 = replace(l4_kv, architecture=replace(l4_kv.architecture, max_context_tokens=8192))
    assert llama3.max_model_len() is None


def test_the_l4_max_model_len_fits_the_kv_cache_vllm_makes_from_the_memory_cuda_reports() -> None:
    # Found in review: the KV budget used nvidia-smi's total (23,033 MiB on an L4, with the 470 MiB the
    # driver reserves), but vLLM's --gpu-memory-utilization is a fraction of torch.cuda.mem_get_info's
    # total (22,563 MiB, PyTorch's "total capacity of 22.03 GiB"). --max-model-len 31,008 was rendered
    # where vLLM's cache holds about 27,600 positions, and vLLM refused to start.
    from gridshift.service.inputs import _max_model_len

    cuda_total = 22563 * 2**20  # DCGM_FI_DEV_FB_FREE + FB_USED, dcgm_L4_kops_aws_idle.prom
    positions = (0.9 * cuda_total - 1.5 * GIB - 8.03e9 * 2) / (32 * 8 * 128 * 2 * 2)
    length = _max_model_len(LLAMA_31_8B, L4, 1)
    assert length is not None and positions - 16 < length <= positions < 27_700
    assert gpu_specs()[L4].memory_mib_reported - gpu_specs()[L4].memory_mib_cuda == 470


def test_every_rendering_on_a_small_gpu_carries_the_max_model_len_unless_the_user_sets_one() -> None:
    # A function of the weights, the GPU type and the GPUs per replica alone (service.inputs.max_model_len):
    # a stray kept through a move, or a rendering after a restart, carries it as a planned replica does.
    from gridshift.service.inputs import max_model_len

    l4_kv = shipped(LLAMA_31_8B, L4).kv_memory
    assert l4_kv is not None
    llama = spec(gpu_types=(L4,)).model_copy(update={"model": spec().model.model_copy(update={"source": LLAMA_31_8B})})
    length = max_model_len(llama, "", L4)
    assert length is not None and length == l4_kv.max_model_len()
    assert max_model_len(llama, "", H100) is None
    args = vllm_args(llama, 8, max_model_len=length)
    assert args[args.index("--max-model-len") + 1] == str(length)
    # A --max-model-len of the user's own (written out, with '_', or abbreviated) replaces gridshift's: the
    # rendering is the one those replicas ran before.
    for own in (["--max-model-len", "8192"], ["--max_model_len=8192"], ["--max-model-l", "8192"]):
        engine = llama.engine.model_copy(update={"extra_args": own})
        theirs = llama.model_copy(update={"engine": engine})
        assert vllm_args(theirs, 8, max_model_len=length) == vllm_args(theirs, 8)


def test_a_gpu_type_the_model_does_not_fit_is_explained_by_memory_not_by_the_slo() -> None:
    # Found in review: 70B on four L4s (weights 141 GB, memory 4 x 22.5 GiB) was "cannot meet the SLO even
    # at batch 1", which sends a user to loosen the SLO.
    from gridshift.profiles_catalog import kv_memory_for

    llama_70b = "meta-llama/Llama-3.1-70B-Instruct"
    h100 = replace(shipped(llama_70b, H100, 4), model=MODEL)
    on_l4 = replace(h100, gpu_type=L4, kv_memory=kv_memory_for(llama_70b, L4, 4))
    d = deployment("big", 1.0, gpu_types=(L4, H100), ttft_ms=60_000.0, tpot_ms=400.0)
    d = replace(d, requirements=replace(d.requirements, gpus_per_replica=4))
    world = snapshot([d], [cluster("a", gpus={L4: 16, H100: 16})], {"a": flat_prices(0.1)}, profiles=(h100, on_l4))
    plan = make_plan(world, PlannerSettings())
    details = "\n".join(plan.deployments[0].explanation.details)
    assert f"{L4}: the model's weights do not fit in 4 x {L4} memory: not used" in details
    assert "cannot meet the SLO" not in details
    assert {t.gpu_type for t in plan.deployments[0].targets if t.replicas > 0} == {H100}
