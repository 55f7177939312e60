"""The GPU check's decoder computes real attention: checked in float64 on the CPU (skipped without torch)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO_ROOT

torch = pytest.importorskip("torch")
GPU_DIR = REPO_ROOT / "e2e" / "gpu"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


decoder = _load("decoder", GPU_DIR / "decoder.py")


def test_grouped_decode_attention_equals_attention_with_repeated_kv_heads() -> None:
    generator = torch.Generator().manual_seed(1)
    batch, query_heads, kv_heads, length, dim = 3, 8, 2, 37, 16
    query = torch.randn(batch, query_heads, dim, dtype=torch.float64, generator=generator)
    keys = torch.randn(batch, kv_heads, length, dim, dtype=torch.float64, generator=generator)
    values = torch.randn(batch, kv_heads, length, dim, dtype=torch.float64, generator=generator)
    repeated_k = keys.repeat_interleave(query_heads // kv_heads, dim=1)
    repeated_v = values.repeat_interleave(query_heads // kv_heads, dim=1)
    scores = torch.einsum("bhd,bhtd->bht", query, repeated_k) / math.sqrt(dim)
    expected = torch.einsum("bht,bhtd->bhd", scores.softmax(dim=-1), repeated_v)
    got = decoder.grouped_decode_attention(query, keys, values)
    assert (got - expected).norm() / expected.norm() < 1e-12


def test_a_decode_step_continues_a_prefill_exactly() -> None:
    # Decoding token T after prefilling T tokens must give what prefilling T+1 tokens gives:
    # this checks rotary positions, KV cache writes and the grouped attention together.
    model = decoder.RandomDecoder(
        decoder.TINY, device=torch.device("cpu"), dtype=torch.float64, max_batch=4, max_context=48, seed=3
    )
    prompts = torch.randint(0, decoder.TINY.vocab, (4, 41), generator=torch.Generator().manual_seed(4))
    length = 40
    model.prefill(prompts[:, :length])
    model.tokens[:4] = prompts[:, length]
    decoded = model.decode_step(4, length)
    assert torch.equal(model.tokens[:4], decoded)
    assert torch.equal(decoded, model.prefill(prompts[:, : length + 1]))


def test_the_llama3_8b_shape_has_8_billion_parameters() -> None:
    assert decoder.LLAMA3_8B.parameter_count() == 8_030_261_248  # as shared/data/h100-llama3-8b-power/gpu.json


def test_the_script_runs_end_to_end_on_the_cpu_and_writes_a_valid_profile(tmp_path: Path) -> None:
    import yaml

    from gridshift.api import GPUProfile

    sys.path.insert(0, str(GPU_DIR))
    gpu_check = _load("gpu_check", GPU_DIR / "gpu_check.py")
    argv = [
        "--tiny", "--fake-power-watts", "250", "--batches", "1,4", "--contexts", "32,64",
        "--phase-seconds", "0.2", "--warmup-seconds", "0.05", "--idle-seconds", "0.1",
        "--prefill-tokens", "32", "--out", str(tmp_path),
    ]  # fmt: skip
    status = gpu_check.main(argv)
    assert status in (0, 1)  # CPU timings on a busy machine may miss the 10% fit check; the GPU run must pass
    profile = GPUProfile.model_validate(yaml.safe_load((tmp_path / "gpuprofile.yaml").read_text()))
    assert [(p.batch, p.context_tokens) for p in profile.spec.points] == [(1, 32), (4, 32), (1, 64), (4, 64)]
    assert all(p.power_watts == pytest.approx(250.0, rel=0.02) for p in profile.spec.points)
    assert profile.spec.idle_power_watts == pytest.approx(250.0, rel=0.02)
    log = (tmp_path / "gpu_check.log").read_text()
    assert "check 1" in log and "check 2" in log and "gpu-check:" in log
