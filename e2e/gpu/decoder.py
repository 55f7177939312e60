"""A Llama-3-shaped decoder with random weights, for measuring decode step time and power on a GPU.

Owns the model arithmetic of `gpu_check.py`: weights drawn directly on the device in bf16, a
preallocated KV cache, one decode step (one token for each of `batch` sequences that each attend
over `context` cached positions) that can be captured in a CUDA graph, and a causal prefill pass.
Its weights are random, so its tokens mean nothing; its memory traffic and arithmetic are those of
the real model, which is what step time and power depend on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class DecoderShape:
    """Sizes of a Llama-style decoder."""

    layers: int
    hidden: int
    query_heads: int
    kv_heads: int
    head_dim: int
    mlp_hidden: int
    vocab: int
    rope_theta: float = 500_000.0

    @property
    def group(self) -> int:
        """Query heads that share one KV head (grouped-query attention)."""
        return self.query_heads // self.kv_heads

    def parameter_count(self) -> int:
        q = self.query_heads * self.head_dim
        kv = self.kv_heads * self.head_dim
        per_layer = self.hidden * (q + 2 * kv) + q * self.hidden + 3 * self.hidden * self.mlp_hidden + 2 * self.hidden
        return self.layers * per_layer + 2 * self.vocab * self.hidden + self.hidden


LLAMA3_8B = DecoderShape(
    layers=32, hidden=4096, query_heads=32, kv_heads=8, head_dim=128, mlp_hidden=14336, vocab=128256
)
TINY = DecoderShape(layers=2, hidden=256, query_heads=8, kv_heads=2, head_dim=32, mlp_hidden=512, vocab=1000)


def rope_cos_sin(shape: DecoderShape, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary cos/sin for integer `positions` ([T]), each [T, head_dim] (the halves repeated)."""
    inv_freq = 1.0 / (
        shape.rope_theta ** (torch.arange(0, shape.head_dim, 2, device=positions.device).float() / shape.head_dim)
    )
    angles = positions.float()[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half rotary embedding over the last dimension."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def grouped_decode_attention(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Attention of one new token per sequence over its cached keys and values.

    query [B, Hq, D]; keys, values [B, Hkv, T, D]. The Hq/Hkv query heads that share a KV head are
    laid out as a short query "sequence" of that head, so one SDPA call reads each cached position
    once and needs no mask (a single decode token sees every cached position). Returns [B, Hq, D].
    """
    batch, query_heads, head_dim = query.shape
    kv_heads = keys.shape[1]
    grouped = query.view(batch, kv_heads, query_heads // kv_heads, head_dim)
    out = F.scaled_dot_product_attention(grouped, keys, values)
    return out.reshape(batch, query_heads, head_dim)


class RandomDecoder:
    """Decoder with random weights and a KV cache for up to `max_batch` sequences of `max_context` tokens."""

    def __init__(
        self,
        shape: DecoderShape,
        *,
        device: torch.device,
        dtype: torch.dtype,
        max_batch: int,
        max_context: int,
        seed: int = 0,
    ) -> None:
        self.shape = shape
        self.device = device
        self.dtype = dtype
        self.max_batch = max_batch
        self.max_context = max_context
        generator = torch.Generator(device=device).manual_seed(seed)

        def weight(rows: int, cols: int) -> torch.Tensor:
            # Drawn on the device in the target dtype: no host copy of 16 GB of weights.
            std = 1.0 / math.sqrt(rows)
            return torch.randn(rows, cols, device=device, dtype=dtype, generator=generator) * std

        q = shape.query_heads * shape.head_dim
        kv = shape.kv_heads * shape.head_dim
        self.embedding = weight(shape.vocab, shape.hidden)
        self.layers = [
            {
                "qkv": weight(shape.hidden, q + 2 * kv),
                "out": weight(q, shape.hidden),
                "gate_up": weight(shape.hidden, 2 * shape.mlp_hidden),
                "down": weight(shape.mlp_hidden, shape.hidden),
                "attn_norm": torch.ones(shape.hidden, device=device, dtype=dtype),
                "mlp_norm": torch.ones(shape.hidden, device=device, dtype=dtype),
            }
            for _ in range(shape.layers)
        ]
        self.final_norm = torch.ones(shape.hidden, device=device, dtype=dtype)
        self.lm_head = weight(shape.hidden, shape.vocab)
        # One slot beyond max_context for the token being decoded. Random, not zeros: zeros can run
        # faster than real data and hide unwritten memory.
        cache_shape = (max_batch, shape.kv_heads, max_context + 1, shape.head_dim)
        self.key_cache = [
            torch.randn(cache_shape, device=device, dtype=dtype, generator=generator) for _ in range(shape.layers)
        ]
        self.value_cache = [
            torch.randn(cache_shape, device=device, dtype=dtype, generator=generator) for _ in range(shape.layers)
        ]
        self.tokens = torch.randint(0, shape.vocab, (max_batch,), device=device, generator=generator)
        self._rope_cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def weight_bytes(self) -> int:
        tensors = [self.embedding, self.lm_head, self.final_norm]
        tensors += [t for layer in self.layers for t in layer.values()]
        return sum(t.numel() * t.element_size() for t in tensors)

    def kv_cache_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.key_cache + self.value_cache)

    def _split_qkv(self, projected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s = self.shape
        q_size = s.query_heads * s.head_dim
        kv_size = s.kv_heads * s.head_dim
        q, k, v = projected.split([q_size, kv_size, kv_size], dim=-1)  # type: ignore[no-untyped-call]
        return q, k, v

    def _rope_at(self, position: int) -> tuple[torch.Tensor, torch.Tensor]:
        # Computed once per position, before any graph capture: a capture may not copy from the host.
        if position not in self._rope_cache:
            positions = torch.arange(position, position + 1, device=self.device)
            self._rope_cache[position] = rope_cos_sin(self.shape, positions, self.dtype)
        return self._rope_cache[position]

    def decode_step(self, batch: int, context: int) -> torch.Tensor:
        """One decode step for the first `batch` sequences at position `context`; feeds its tokens back.

        Static in `batch` and `context` (Python ints), so the same call can be captured in a CUDA graph
        and replayed: each replay reads every weight once and `batch` x (`context` + 1) cached positions.
        """
        s = self.shape
        cos, sin = self._rope_at(context)
        x = F.embedding(self.tokens[:batch], self.embedding)
        for index, layer in enumerate(self.layers):
            h = F.rms_norm(x, (s.hidden,), layer["attn_norm"])
            q, k, v = self._split_qkv(h @ layer["qkv"])
            q = apply_rope(q.view(batch, s.query_heads, s.head_dim), cos, sin)
            k = apply_rope(k.view(batch, s.kv_heads, s.head_dim), cos, sin)
            keys = self.key_cache[index][:batch, :, : context + 1]
            values = self.value_cache[index][:batch, :, : context + 1]
            keys[:, :, context] = k
            values[:, :, context] = v.view(batch, s.kv_heads, s.head_dim)
            attended = grouped_decode_attention(q, keys, values)
            x = x + attended.reshape(batch, -1) @ layer["out"]
            h = F.rms_norm(x, (s.hidden,), layer["mlp_norm"])
            gate, up = (h @ layer["gate_up"]).chunk(2, dim=-1)
            x = x + (F.silu(gate) * up) @ layer["down"]
        logits = F.rms_norm(x, (s.hidden,), self.final_norm) @ self.lm_head
        next_tokens = logits.argmax(dim=-1)
        self.tokens[:batch].copy_(next_tokens)
        return next_tokens

    def prefill(self, prompts: torch.Tensor) -> torch.Tensor:
        """A causal forward pass over `prompts` [B, T]; writes the KV cache; returns the next tokens [B]."""
        s = self.shape
        batch, length = prompts.shape
        cos, sin = rope_cos_sin(s, torch.arange(length, device=self.device), self.dtype)
        x = F.embedding(prompts, self.embedding)
        for index, layer in enumerate(self.layers):
            h = F.rms_norm(x, (s.hidden,), layer["attn_norm"])
            q, k, v = self._split_qkv(h @ layer["qkv"])
            q = apply_rope(q.view(batch, length, s.query_heads, s.head_dim).transpose(1, 2), cos, sin)
            k = apply_rope(k.view(batch, length, s.kv_heads, s.head_dim).transpose(1, 2), cos, sin)
            v = v.view(batch, length, s.kv_heads, s.head_dim).transpose(1, 2)
            self.key_cache[index][:batch, :, :length] = k
            self.value_cache[index][:batch, :, :length] = v
            attended = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            x = x + attended.transpose(1, 2).reshape(batch, length, -1) @ layer["out"]
            h = F.rms_norm(x, (s.hidden,), layer["mlp_norm"])
            gate, up = (h @ layer["gate_up"]).chunk(2, dim=-1)
            x = x + (F.silu(gate) * up) @ layer["down"]
        # Only the last position's logits are needed to start decoding, as serving engines do.
        last = F.rms_norm(x[:, -1], (s.hidden,), self.final_norm)
        return (last @ self.lm_head).argmax(dim=-1)
