"""Operator settings: every knob the running operator reads, typed, with its unit and why the default.

Read from environment variables prefixed `GRIDSHIFT_` (the Helm chart sets them from values;
`values.schema.json` is generated from this model).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    """Settings of the gridshift operator process."""

    model_config = SettingsConfigDict(env_prefix="GRIDSHIFT_", extra="forbid", frozen=True)

    namespace: str = Field(
        default="gridshift-system",
        min_length=1,
        description="Namespace the operator runs in; Secret references without a namespace resolve here.",
    )
    plan_interval_seconds: float = Field(
        default=60.0,
        ge=1,
        le=3600,
        description=(
            "Seconds between global planning cycles. 60 s: prices change every 15-60 min and vLLM "
            "metrics are rated over minutes, so planning faster only adds API load."
        ),
    )
    revalidate_delay_seconds: float = Field(
        default=15.0,
        ge=0,
        le=600,
        description=(
            "Seconds to wait before re-planning to confirm a move (Karpenter does the same before "
            "disrupting), so one noisy sample does not move replicas."
        ),
    )
    prometheus_url: str | None = Field(
        default=None,
        description="Prometheus for clusters whose RegionalCluster sets no prometheusUrl.",
    )
    metrics_window_seconds: int = Field(
        default=300,
        ge=10,
        le=86_400,
        description="PromQL range for rates and quantiles, s; 5 min smooths scrape jitter yet follows load in minutes.",
    )
    metrics_cluster_label: str | None = Field(
        default=None,
        description=(
            "Prometheus label naming the member cluster, when one Prometheus (Thanos, Mimir) holds "
            "several clusters' series; unset when each cluster has its own."
        ),
    )
    metrics_stale_after_seconds: float = Field(
        default=600.0,
        ge=30,
        description="Metrics older than this are treated as missing: no scale-down below the Ready count.",
    )
    cold_start_seconds: float = Field(
        default=180.0,
        ge=0,
        le=7200,
        description=(
            "Seconds a new replica holds GPUs before serving (weights download + load + CUDA graphs). "
            "Measured floor 18 s for an 8B model on H100; real vLLM start-ups take minutes."
        ),
    )
    move_penalty_usd: float = Field(
        default=0.25,
        ge=0,
        description="Extra cost charged per replica moved, USD, for the risk and disruption of a move.",
    )
    api_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Timeout of one call to a member cluster's API server."
    )
    hub_connections: int = Field(
        default=20,
        ge=1,
        le=1000,
        description=(
            "Most connections kopf opens to the hub API server at once. Unbounded, a start-up with "
            "1,000 InferenceDeployments opened one TLS connection per object and peaked near 530 MB; "
            "with 20 the operator stays near 230 MB and handles them just as fast."
        ),
    )
    probe_port: int = Field(default=8080, ge=1, le=65535, description="Port of the liveness/readiness probes.")
    metrics_port: int = Field(default=9090, ge=1, le=65535, description="Port of the operator's /metrics.")
    clock_url: str | None = Field(
        default=None,
        description=(
            "Demo and end-to-end tests only: read 'now' from a simulated world's /clock endpoint "
            "instead of the system clock, so accelerated days play out in minutes."
        ),
    )
