"""KV-memory batch limit: the most sequences a vLLM replica can hold at a context length.

vLLM gives the KV cache what is left of the memory it may use once weights and activations are in
place, and admits a sequence only while its KV blocks fit; beyond that it queues or preempts, so a
batch larger than the cache holds is never reached whatever the profile says. Per replica of G GPUs
(tensor-parallel size G), each with M bytes, at vLLM's --gpu-memory-utilization u:

    KV budget     K = G x (u x M - R) - W
                  W = parameters x bytes per parameter (the weights, split over the G GPUs)
                  R = per-GPU reserve for activations, CUDA graphs and the non-torch allocations
    KV per token  k = layers x KV heads' x head dim x 2 (K and V) x bytes per element
                  KV heads' = max(KV heads, G): with more GPUs than KV heads vLLM replicates heads
    KV per sequence at context n: full-attention layers hold n positions, sliding-window layers at
                  most the window; positions are allocated in blocks of 16 (vLLM's block size), so
                  n is rounded up to a multiple of 16
    batch limit   B_kv(n) = floor(K / KV per sequence(n))

The context n is the deployment's mean prompt plus mean output, the length a sequence reaches at its
end: a batch of B sequences of mean size then fits even when all are near completion (the mean
occupancy is lower, prompt + output/2, and the slack absorbs size variation around the mean).
With the figures of the data files (gridshift/data/gpus.yaml, models.yaml): Llama-3.1-8B (16.1 GB
bf16, 128 KiB per position) on one L4 (M = 22,563 MiB, the total CUDA reports: vLLM's u is a fraction
of torch.cuda.mem_get_info's total, which leaves out the 470 MiB the driver reserves of nvidia-smi's
23,033) at u = 0.9 keeps 3.6 GB of KV, 27,600 positions: 13 sequences of 2,048 tokens, where an 80 GB
H100 keeps 59 GB, 218 such sequences.

This module does no I/O: the GPU memory and the architecture arrive as values
(gridshift.profiles_catalog reads them from the data files).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

VLLM_GPU_MEMORY_UTILIZATION = 0.9
"""vLLM's default --gpu-memory-utilization: the fraction of each GPU's memory vLLM may use."""
VLLM_BLOCK_TOKENS = 16
"""vLLM's default KV block size, tokens: a sequence holds whole blocks."""
RESERVE_BYTES_PER_GPU = 1.5 * 2**30
"""Memory per GPU vLLM keeps outside weights and KV (activation peak of its profiling forward pass,
CUDA graphs, NCCL and cuBLAS workspaces), bytes. vLLM logs 1.2-1.4 GiB of activation peak plus
non-torch memory for 7-8 B models at its default 8,192 batched tokens; 1.5 GiB rounds that up."""


@dataclass(frozen=True)
class ModelArchitecture:
    """What sizes a model's weights and KV cache (one model, one checkpoint precision)."""

    parameters_billion: float
    layers: int
    kv_heads: int
    head_dim: int
    weight_bytes_per_parameter: float = 2.0
    kv_bytes_per_element: float = 2.0
    weights_bytes_override: float | None = None
    """Checkpoint size when it is not parameters x bytes per parameter (mixed precisions)."""
    sliding_window_layers: int = 0
    sliding_window_tokens: int = 0
    max_context_tokens: int | None = None
    """The longest sequence the model takes (config.json's max_position_embeddings): vLLM's default
    --max-model-len, for which it refuses to start unless one sequence of it fits in the KV cache."""

    def __post_init__(self) -> None:
        for name in ("parameters_billion", "layers", "kv_heads", "head_dim", "weight_bytes_per_parameter"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.sliding_window_layers <= self.layers:
            raise ValueError(f"sliding_window_layers must be within 0..layers ({self.layers})")
        if self.sliding_window_layers and self.sliding_window_tokens < 1:
            raise ValueError("sliding_window_tokens must be >= 1 when sliding_window_layers is set")
        if self.max_context_tokens is not None and self.max_context_tokens < VLLM_BLOCK_TOKENS:
            raise ValueError(f"max_context_tokens must be >= {VLLM_BLOCK_TOKENS}, got {self.max_context_tokens}")

    @property
    def weights_bytes(self) -> float:
        if self.weights_bytes_override is not None:
            return self.weights_bytes_override
        return self.parameters_billion * 1e9 * self.weight_bytes_per_parameter

    def kv_bytes_per_sequence(self, context_tokens: float, gpus: int = 1) -> float:
        """KV cache of one sequence at this context over all the replica's GPUs, bytes."""
        positions = VLLM_BLOCK_TOKENS * math.ceil(max(context_tokens, 1.0) / VLLM_BLOCK_TOKENS)
        per_position_per_layer = max(self.kv_heads, gpus) * self.head_dim * 2 * self.kv_bytes_per_element
        full_layers = self.layers - self.sliding_window_layers
        windowed = min(positions, VLLM_BLOCK_TOKENS * math.ceil(self.sliding_window_tokens / VLLM_BLOCK_TOKENS))
        return per_position_per_layer * (full_layers * positions + self.sliding_window_layers * windowed)


@dataclass(frozen=True)
class KvMemory:
    """The memory side of one (model, GPU type, GPUs per replica): enough to bound the batch."""

    architecture: ModelArchitecture
    gpu_memory_bytes: float
    """Memory of one GPU as CUDA reports it (not nvidia-smi's total, which counts the driver's reserve), bytes."""
    gpus: int = 1
    memory_utilization: float = VLLM_GPU_MEMORY_UTILIZATION
    reserve_bytes_per_gpu: float = RESERVE_BYTES_PER_GPU

    def __post_init__(self) -> None:
        if not self.gpu_memory_bytes > 0:
            raise ValueError(f"gpu_memory_bytes must be > 0, got {self.gpu_memory_bytes}")
        if self.gpus < 1:
            raise ValueError(f"gpus must be >= 1, got {self.gpus}")
        if not 0 < self.memory_utilization <= 1:
            raise ValueError(f"memory_utilization must be in (0, 1], got {self.memory_utilization}")

    @property
    def kv_budget_bytes(self) -> float:
        """Memory left for the KV cache over the whole replica (negative: the weights do not fit)."""
        usable = self.gpus * (self.memory_utilization * self.gpu_memory_bytes - self.reserve_bytes_per_gpu)
        return usable - self.architecture.weights_bytes

    def max_batch(self, context_tokens: float) -> int:
        """The most sequences of `context_tokens` positions the KV cache holds (0: not even one)."""
        budget = self.kv_budget_bytes
        if budget <= 0:
            return 0
        return int(budget // self.architecture.kv_bytes_per_sequence(context_tokens, self.gpus))

    def max_model_len(self) -> int | None:
        """The --max-model-len a replica needs to start: the longest sequence (whole KV blocks) the cache
        holds, where that is shorter than the model's own maximum; None where the model's maximum fits, is
        unknown, or not even one block fits (the planner then uses no replica here: batch limit 0).

        vLLM starts only if one sequence of --max-model-len (default: the model's maximum) fits in the KV
        cache: Llama-3.1-8B's 131,072 need 16 GiB, an L4 keeps 3.4 GiB. Found in review: such replicas were
        planned and rendered without the flag, and never started."""
        longest = self.architecture.max_context_tokens
        if longest is None or self.kv_budget_bytes <= 0:
            return None
        fits = self.kv_budget_bytes >= self.architecture.kv_bytes_per_sequence(longest, self.gpus)
        if fits:
            return None
        low, high = 0, longest // VLLM_BLOCK_TOKENS  # in blocks: low fits (or is 0), high does not
        while high - low > 1:
            middle = (low + high) // 2
            if self.architecture.kv_bytes_per_sequence(middle * VLLM_BLOCK_TOKENS, self.gpus) <= self.kv_budget_bytes:
                low = middle
            else:
                high = middle
        return low * VLLM_BLOCK_TOKENS if low > 0 else None


def batch_limit(profile_max_batch: int, kv: KvMemory | None, context_tokens: float) -> int:
    """The largest batch a replica runs: the profile's largest measured batch, lowered to what the
    KV cache holds at this context; the profile's alone where the memory side is unknown."""
    if kv is None:
        return profile_max_batch
    return min(profile_max_batch, kv.max_batch(context_tokens))
