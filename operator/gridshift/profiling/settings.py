"""Typed settings of a profiling sweep: what load to offer an endpoint and how long to measure it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gridshift.redaction import display_url


@dataclass(frozen=True)
class LoadSettings:
    """How `gridshift profile` drives an OpenAI-compatible endpoint (vLLM) through a concurrency sweep."""

    endpoint: str
    """Base URL of the server, e.g. http://vllm:8000 (the /v1/... paths are appended)."""
    served_model: str
    """Model name the server serves (the `model` field of each request)."""
    concurrency_levels: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    """Requests kept in flight at each level. Powers of two to 64 span the batch sizes a replica
    runs at under an SLO, and give the step-time fit points across that range."""
    prompt_tokens: int = 1024
    """Prompt length of each request, tokens (when no trace gives lengths). 1024: about the
    conversation trace's mean (1,155)."""
    output_tokens: int = 256
    """Tokens generated per request (when no trace gives lengths); vLLM's ignore_eos makes it exact.
    256: long enough that decode, not prefill, dominates each request, as in chat traffic."""
    api: Literal["completions", "chat"] = "completions"
    """'completions' sends prompts as token ids (exact length, no tokenizer needed); 'chat' sends
    words, whose token count the server's tokenizer decides (about one token per word)."""
    warmup_seconds: float = 10.0
    """Load before each level's measurement starts, s: long enough for every stream to be decoding
    and for power to settle (NVML averages some readings over 1 s)."""
    measure_seconds: float = 30.0
    """Measured window of each level, s: many steps and, for DCGM via Prometheus, several scrapes."""
    idle_seconds: float = 10.0
    """Idle-power phase before the sweep, s (0 to skip; the planner then estimates idle power)."""
    request_timeout_seconds: float = 600.0
    """Longest wait for any byte of a response, s; a long prefill under load can take minutes."""
    vllm_extensions: bool = True
    """Send vLLM's ignore_eos/min_tokens and continuous usage statistics, so outputs have exactly
    output_tokens tokens and every chunk reports its token count."""
    seed: int = 0
    """Seed of the random prompt token ids; fixed so sweeps are repeatable."""

    def __post_init__(self) -> None:
        # Schemes are case-insensitive (RFC 3986 3.1), and the URL is shown as logs show it: found in review,
        # `HTTP://user:password@host/?api_key=...` was refused, quoting the password and the key.
        scheme, separator, _ = self.endpoint.partition("://")
        if not separator or scheme.lower() not in ("http", "https"):
            raise ValueError(f"endpoint must be an http(s) URL, got {display_url(self.endpoint)}")
        if not self.served_model:
            raise ValueError("served_model must not be empty")
        if not self.concurrency_levels or any(c < 1 for c in self.concurrency_levels):
            raise ValueError(f"concurrency_levels must be positive integers, got {list(self.concurrency_levels)}")
        if len(set(self.concurrency_levels)) != len(self.concurrency_levels):
            raise ValueError(f"concurrency_levels must not repeat, got {list(self.concurrency_levels)}")
        for name in ("prompt_tokens", "output_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.output_tokens < 2:
            raise ValueError(f"output_tokens must be >= 2 to measure inter-token latency, got {self.output_tokens}")
        for name in ("warmup_seconds", "idle_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 s, got {getattr(self, name)}")
        for name in ("measure_seconds", "request_timeout_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0 s, got {getattr(self, name)}")
