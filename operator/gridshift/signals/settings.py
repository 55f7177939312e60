"""Typed settings of the signal adapters: each field says its unit and why its default."""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

from gridshift.signals.labels import LabelScheme
from gridshift.signals.promql import QueryWindows


@dataclass(frozen=True)
class RetryPolicy:
    """Retries with exponential backoff for transient failures (timeouts, 429, 5xx)."""

    max_attempts: int = 3
    """Attempts per fetch, first included: rides out a restart of the upstream without holding a
    reconcile loop for long."""
    initial_backoff_seconds: float = 2.0
    """Wait before the second attempt; doubled each time after."""
    max_backoff_seconds: float = 60.0
    """Cap on one wait, also applied to a server's Retry-After, so a loop is never parked for long."""

    def backoff_seconds(self, failed_attempts: int, retry_after_seconds: float | None = None) -> float:
        """Wait after `failed_attempts` failures (1-based), honouring the server's Retry-After."""
        exponential = self.initial_backoff_seconds * math.pow(2.0, failed_attempts - 1)
        wanted = max(exponential, retry_after_seconds or 0.0)
        return min(wanted, self.max_backoff_seconds)


@dataclass(frozen=True)
class MetricsSettings:
    """How Prometheus is queried for vLLM and DCGM signals."""

    labels: LabelScheme = field(default_factory=LabelScheme)
    """Which labels tie series to a deployment (see gridshift.signals.labels)."""
    windows: QueryWindows = field(default_factory=QueryWindows)
    """rate()/increase() windows and the latency quantile."""
    query_timeout_seconds: float = 10.0
    """Per HTTP request, s, all of it (connect, headers and body: signals.http.exchange, so a server
    that drips its answer is abandoned too): Prometheus' own default query timeout is 2 min, but a
    reconcile loop should give up well before that; these queries touch a few hundred series."""
    max_concurrent_queries: int = 13
    """Queries of one `cluster_signals` call in flight at once: 13, one per signal, so a cluster's queries all go
    out together and it takes about as long as its slowest query. Each call has its own (found in review: one
    bound of 12 per Prometheus URL, shared by every cluster on it, made 24 clusters on one Thanos take 24 query
    times, past metricsDeadlineSeconds, where one after another they had taken 12)."""
    max_queries_in_flight: int = 32
    """Queries in flight at once to one Prometheus from every call together (clusters sharing it with a cluster
    label): 32, as many clusters as the observe stage reads at once, so clusters sharing a Prometheus never have
    fewer queries out than when each sent its queries one after another; Prometheus queues those beyond its own
    --query.max-concurrency (20) for a query time at most."""
    deadline_seconds: float | None = None
    """A `cluster_signals` call's whole time, s (the operator's metricsDeadlineSeconds, after which its answer is
    not used): then its queries not yet sent are never sent and it raises a retryable MetricsError. None: no
    limit but each query's own timeout and retries."""
    max_answer_bytes: int = 64 * 1024 * 1024
    """Largest answer read, bytes: a vector of 10,000 series is a few MB."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    """Retries of one query on connection errors and 5xx."""


class ResolutionPreference(StrEnum):
    """Which series to keep when a price document has the same hours at two resolutions."""

    FINEST = "finest"
    COARSEST = "coarsest"


@dataclass(frozen=True)
class PriceFeedSettings:
    """How price feeds fetch and how far ahead they read."""

    horizon_hours: float = 48.0
    """Hours from now to request or generate: day-ahead auctions publish the next day around noon
    CET, so at most ~35 h are ever known; 48 h covers that with margin."""
    lookback_hours: float = 1.0
    """Hours before now to include, so the interval in progress is always in the series."""
    http_timeout_seconds: float = 10.0
    """Connect/read/write timeout per network operation, s: ENTSO-E usually answers within 1-3 s."""
    fetch_deadline_seconds: float = 20.0
    """Total time one fetch attempt may take, s: connect, headers and body together (the exchange is
    abandoned then, however steadily a server drips bytes). Twice the per-operation timeout: a healthy
    answer takes 1-3 s, and three attempts with backoff still end within about a minute."""
    first_read_wait_seconds: float = 3.0
    """How long the first read of a background feed waits for its first fetch, s, so a restarted
    operator does not plan one cycle on no prices. Later reads never wait. Bounded so a hostile
    endpoint delays only the first cycle, and by this much."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Largest body accepted, bytes: a two-day A44 document at PT15M is ~40 kB; anything near this
    is not a price document. Parsed, a JSON body takes about 25 times its size (a 16 MiB body, the
    cap until 3 December 2026, took 397 MiB: two hostile feeds at once passed the chart's 1 GiB)."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    """Retries of one fetch on timeouts, truncated bodies, 429 and 5xx."""
    max_csv_bytes: int = 32 * 1024 * 1024
    """Largest local price file a csvReplay feed reads, bytes: a year of hourly prices of 17 markets
    (the shared wide CSV) is 1.2 MB, so this holds decades, or years at 15-minute resolution. Read
    row by row into an index of 16 bytes a row, a file of this size stays far below the chart's
    512 MiB memory limit (see bench/price_csv_bench.py)."""
    prefer_resolution: ResolutionPreference = ResolutionPreference.FINEST
    """Finest by default: 15-minute prices are what is settled since the 2025 SDAC switch."""


SpecT = TypeVar("SpecT")


@dataclass(eq=False)
class ConfiguredFeed(Generic[SpecT]):
    """What every price and carbon feed adapter is made of: its name (the one errors and logs use), its
    settings block of the RegionalCluster spec, and how it fetches. Each feed adds its own fields, keyword-only."""

    name: str
    _: KW_ONLY
    spec: SpecT
    settings: PriceFeedSettings = field(default_factory=PriceFeedSettings)
