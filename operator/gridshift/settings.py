"""Operator settings: every knob the running operator reads, typed, with its unit and why the default.

Read from environment variables prefixed `GRIDSHIFT_` (the Helm chart sets them from values;
`values.schema.json` is generated from this model).
"""

from __future__ import annotations

import difflib
import logging
import os
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gridshift.api.carbon import CarbonPrice
from gridshift.api.common import (
    CREDENTIAL_QUERY,
    PROMETHEUS_CREDENTIAL,
    HttpUrl,
    Port,
    credential_query_message,
    refuse_credential_query,
)
from gridshift.planner.settings import PlannerSettings
from gridshift.signals.labels import LabelScheme
from gridshift.signals.promql import BUCKET_LABEL

log = logging.getLogger(__name__)

PROMETHEUS_LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
"""A Prometheus label name (Prometheus' data model); names starting with __ are its own."""
_SCHEME_LABELS = tuple(
    sorted(
        {LabelScheme.namespace_label, LabelScheme.pod_label, LabelScheme.deployment_label, LabelScheme.model_name_label}
    )
)
"""Labels the operator's selectors already match on: a cluster label of the same name would ask each series
for two values of one label, and match nothing."""
_QUERY_LABELS = (*_SCHEME_LABELS, BUCKET_LABEL)
"""Labels a cluster label may not be: the selectors' (_SCHEME_LABELS), and the histogram bucket label the
length-bucket queries group by (found in review: `le` was taken, and the bucket queries then selected the
cluster and grouped the buckets by one label)."""
_PROMETHEUS_URL_MESSAGE = credential_query_message(
    "operator.prometheusUrl (GRIDSHIFT_PROMETHEUS_URL)",
    "anyone who may read the operator's Deployment or the release's values",
    PROMETHEUS_CREDENTIAL,
)


CLUSTER_READ_TIMEOUTS = 3
"""api_timeout_seconds a member cluster's read may go with none of its calls answered
(`OperatorSettings.cluster_read_deadline_seconds`). Each call of a read ends within one api_timeout_seconds
(gridshift.deadline), and the first that fails ends the read, so a hung or dripping apiserver is given up on
within about one; 3 leave room for a call or two that the member's client makes besides the one waited on
(discovery before a list), while staying far below the 60 s planning interval. How long the whole read takes
is bounded apart (`cluster_read_cap_seconds`): found in review, a deadline on the whole read made a healthy but
large member Unreachable on its first read after a restart or failover (no watch caches yet: one list call per
namespace and kind, one after another, over 30 s with each call well within its timeout), and its capacity
was planned again elsewhere (replicas doubled). A read given up on goes on in the background (its listings
seed the watch caches for the next cycle) but its answer is dropped (service.observe)."""

LEASE_WRITE_MARGIN_SECONDS = 1.5
"""Least leaseDurationSeconds - leaseRenewDeadlineSeconds: hub.lease.WRITE_ALLOWANCE_SECONDS (1 s kept off a member
write's window) + gridshift.deadline.MIN_WRITE_SECONDS (0.5 s, the least a write is sent with), so that a write
started just inside the renew deadline is never refused while the holder leads. Spelled out here, below those
layers (tests/shell/test_settings_env.py holds it to their sum)."""


class OperatorSettings(BaseSettings):
    """Settings of the gridshift operator process."""

    # No infinite or NaN number (review: GRIDSHIFT_MOVE_PENALTY_USD=inf loaded, and the planner's arithmetic
    # turned it into NaN objectives).
    model_config = SettingsConfigDict(env_prefix="GRIDSHIFT_", extra="forbid", frozen=True, allow_inf_nan=False)

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
    unreachable_routing_grace_seconds: float = Field(
        default=180.0,
        ge=0,
        le=3600,
        description=(
            "Seconds an unreachable member cluster keeps the routing weight it had, while its replica pods still "
            "report fresh vLLM metrics; 0 drops it at once. 180 s: three default planning cycles, so one slow or "
            "lost answer from its API server moves no traffic, yet a cluster whose pods stop reporting loses its "
            "weight at once and one away longer loses it within minutes. Its replicas are not counted as "
            "capacity meanwhile."
        ),
    )
    # Found in review: a proxy's ?api_key= was admitted (and documented) here, then sat in clear in the
    # Deployment's env and the release's values; refused as in a RegionalCluster's URLs (CREDENTIAL_QUERY).
    prometheus_url: HttpUrl | None = Field(
        default=None,
        json_schema_extra={"not": {"type": "string", "pattern": CREDENTIAL_QUERY}},
        description=(
            "Prometheus for clusters whose RegionalCluster sets no prometheusUrl; http(s), no user:password@ "
            "and no credential in the query string (the URL reaches logs and the Deployment's env): gridshift "
            "has no Secret for a Prometheus credential, so put a proxy before Prometheus that adds it."
        ),
    )
    metrics_window_seconds: int = Field(
        default=300,
        ge=10,
        le=86_400,
        description="PromQL range for rates and quantiles, s; 5 min smooths scrape jitter yet follows load in minutes.",
    )
    metrics_deadline_seconds: float = Field(
        default=20.0,
        gt=0,
        le=600,
        description=(
            "Seconds the observe stage waits for every cluster's Prometheus answers (one query per signal "
            "per cluster, clusters in parallel and each cluster's 12 queries at once; clusters sharing one "
            "Prometheus have at most 32 in flight to it together); a cluster still unanswered then has unknown "
            "demand this cycle and its queries not yet sent are not sent. 20 s: a query that times out once "
            "(10 s) and is answered on its retry 2 s later still counts; far below the 60 s planning interval."
        ),
    )
    write_concurrency: int = Field(
        default=16,
        ge=1,
        le=256,
        description=(
            "Hub status patches in flight at once. 16: 1,000 patches of ~30 ms each take about 2 s instead "
            "of 30 s one after another, while staying under the apiserver's default per-client "
            "max-in-flight share (kube-apiserver --max-mutating-requests-inflight 200)."
        ),
    )
    queue_drain_seconds: float = Field(
        default=300.0,
        ge=10,
        le=86_400,
        description=(
            "Seconds within which requests left waiting in vLLM's queue should be served, s: the queue is "
            "a stock, so it adds waiting / this to the measured request rate. 300 s: about the planner's "
            "reaction time (a cold start plus a cycle). Independent of metricsWindowSeconds, so a short "
            "rate window does not inflate demand."
        ),
    )
    max_num_seqs_interval_seconds: float = Field(
        default=1800.0,
        ge=0,
        le=86_400,
        description=(
            "Least seconds between two renderings of a new vLLM --max-num-seqs alone (same spec generation and "
            "build) in one member Deployment: each is a new pod template, a rollout of every replica. 1800 s: ten "
            "cold starts (coldStartSeconds), so rollouts take at most a tenth of the time, while the flag still "
            "follows a lasting change of request sizes within half an hour; a planned value below half the live one "
            "is rendered at once (an overloaded replica could decode twice the batch planned, its tokens near half "
            "as fast). 0: no interval (the dead band alone)."
        ),
    )
    # Found in review: any string was taken (k8s-cluster, ""), and the label goes unescaped into every
    # PromQL selector and `by (...)`, so every query failed and demand was unknown everywhere, with no
    # error at install. Now a Prometheus label name, not reserved (__) nor one the selectors already use.
    metrics_cluster_label: str | None = Field(
        default=None,
        min_length=1,
        pattern=PROMETHEUS_LABEL_NAME,
        json_schema_extra={"not": {"anyOf": [{"type": "string", "pattern": "^__"}, {"enum": list(_QUERY_LABELS)}]}},
        description=(
            "Prometheus label naming the member cluster, when one Prometheus (Thanos, Mimir) holds "
            "several clusters' series; unset when each cluster has its own. Unset while RegionalClusters "
            "share a Prometheus (one prometheusUrl, or none: prometheusUrl here) and workload namespaces, "
            "their demand is not read (their condition MetricsAmbiguous says so). A Prometheus label name "
            f"(letters, digits, _), not starting with __ nor one of {', '.join(_QUERY_LABELS)}."
        ),
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
        # The planner's own default, so that `gridshift bench planner` and simulate plan as the operator does
        # (review: the operator charged 0.25, the bench 0.10, and three seeds of four planned differently).
        default=PlannerSettings.move_penalty_usd,
        ge=0,
        description="Extra cost charged per replica moved, USD, for the risk and disruption of a move.",
    )
    default_carbon_price_usd_per_tonne: CarbonPrice = Field(
        default=0.0,
        description=(
            "Internal carbon price, USD per tonne CO2eq, for InferenceDeployments that set no spec.carbon."
            "priceUsdPerTonne. 0: carbon enters no cost unless a deployment asks (the EU ETS traded near "
            "65 EUR/t in 2024; the US EPA's 2023 social cost of carbon is 190 USD/t)."
        ),
    )
    api_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description=(
            "Seconds one call to a member cluster's API server may take, whole answer included: a server that "
            "does not answer, or drips its answer, is then given up on and the cluster is unreachable this cycle. "
            "A cluster's read in a cycle is given up on once none of its calls answered for 3 times this (and "
            "after planIntervalSeconds in any case). Each request to the hub's own API server (reads, Events, the "
            "leader Lease: less where its renewal round has less left) has this timeout too, per network "
            "operation; status and HTTPRoute-weight writes have it as a total deadline, less where the Lease's "
            "write window has less left."
        ),
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
    planner_time_budget_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description=(
            "Seconds (wall clock) the planner's search may spend improving each cycle's plan; small fleets are "
            "solved to proven optimality well within it. Keep it below planIntervalSeconds."
        ),
    )
    lease_duration_seconds: float = Field(
        default=15.0,
        ge=2,
        le=600,
        description=(
            "Leader election: seconds a candidate waits, on its own clock, after the Lease last changed before "
            "taking it over (client-go's default 15 s), never less than this whatever the Lease says; also the "
            "start-up delay of a first install: an absent Lease, or one cleared by hand, is taken only once it "
            "stayed so this long (a Lease released by a pod shutting down is taken at once)."
        ),
    )
    lease_renew_deadline_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description=(
            "Leader election: a leader whose last successful renewal was sent this long ago stops acting, before "
            "any other replica may take over, and a renewal round (its attempts since the last success) that "
            "lasted this long without one stops it renewing; below leaseDurationSeconds (client-go's default 10 s)."
        ),
    )
    lease_retry_period_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description=(
            "Leader election: seconds from a successful renewal to the next renewal round, between the starts of a "
            "round's attempts, and between a candidate's tries (client-go's 2 s)."
        ),
    )
    probe_port: Port = Field(default=8080, description="Port of the liveness/readiness probes.")
    metrics_port: Port = Field(default=9090, description="Port of the operator's /metrics.")
    log_format: Literal["text", "json"] = Field(
        default="text",
        description=(
            "text: kopf's lines; json: one JSON object per line (timestamp, severity, logger, message) with "
            "`deployment` (namespace/name) and `cluster` keys on the lines about one, and `reason` on errors, "
            "for Loki, Elasticsearch or Cloud Logging. Secrets are redacted from every field either way."
        ),
    )
    clock_url: str | None = Field(
        default=None,
        description=(
            "Demo and end-to-end tests only: read 'now' from a simulated world's /clock endpoint "
            "instead of the system clock, so accelerated days play out in minutes."
        ),
    )

    @property
    def cluster_read_deadline_seconds(self) -> float:
        """Seconds a member cluster's read (its price feeds, workloads, inventory and objects, read in parallel
        with the other clusters') may go with none of its member calls answered: CLUSTER_READ_TIMEOUTS x
        api_timeout_seconds (30 s by default). A cluster quiet that long is unreachable this cycle and the others
        are planned (found in review: one hung member apiserver stopped the cycle of every cluster and tenant);
        one whose calls keep answering is waited for up to `cluster_read_cap_seconds`."""
        return CLUSTER_READ_TIMEOUTS * self.api_timeout_seconds

    @property
    def cluster_read_cap_seconds(self) -> float:
        """Seconds the observe stage waits at most for a member cluster's read, however steadily its calls
        answer: plan_interval_seconds (60 s by default), or cluster_read_deadline_seconds if that is longer. A
        read that keeps answering holds the cycle of every cluster, so it may take at most one planning
        interval, when the next cycle would have begun anyway; a cold read of a large member (one list call
        per namespace and kind after a restart or failover) fits in it, where 3 x api_timeout_seconds did not
        (found in review). A cluster still reading then is unreachable this cycle, as one gone quiet."""
        return max(self.plan_interval_seconds, self.cluster_read_deadline_seconds)

    @field_validator("metrics_cluster_label")
    @classmethod
    def _cluster_label_free(cls, label: str | None) -> str | None:
        if label is not None and label.startswith("__"):
            raise ValueError("names starting with __ are Prometheus' own; name the label that holds the cluster")
        if label in _SCHEME_LABELS:
            raise ValueError(
                f"the operator's selectors already match on {label} (and on {', '.join(_SCHEME_LABELS)}): a series "
                "cannot hold two values of one label; name the label that holds the cluster"
            )
        if label == BUCKET_LABEL:
            raise ValueError(
                f"{label} is the histogram bucket label the queries group by (with the cluster label): "
                "name the label that holds the cluster"
            )
        return label

    @field_validator("prometheus_url")
    @classmethod
    def _no_credential_in_prometheus_query(cls, url: str | None) -> str | None:
        return url if url is None else refuse_credential_query(url, _PROMETHEUS_URL_MESSAGE)

    @model_validator(mode="after")
    def _planner_budget(self) -> OperatorSettings:
        if self.planner_time_budget_seconds >= self.plan_interval_seconds:
            raise ValueError(
                f"plannerTimeBudgetSeconds ({self.planner_time_budget_seconds}) must be below planIntervalSeconds "
                f"({self.plan_interval_seconds}): the planner must leave time to act within a cycle"
            )
        return self

    @model_validator(mode="after")
    def _lease_timing(self) -> OperatorSettings:
        if not self.lease_retry_period_seconds < self.lease_renew_deadline_seconds < self.lease_duration_seconds:
            raise ValueError(
                "leaseRetryPeriodSeconds < leaseRenewDeadlineSeconds < leaseDurationSeconds must hold, got "
                f"{self.lease_retry_period_seconds}, {self.lease_renew_deadline_seconds}, {self.lease_duration_seconds}"
            )
        # A member write may take until a standby may act, less WRITE_ALLOWANCE_SECONDS (hub.lease), and is not
        # sent with under MIN_WRITE_SECONDS of that left: while the holder leads (renewal younger than the renew
        # deadline) that must leave room, or writes are refused while it leads (found in regression review:
        # duration 11, renew deadline 10.5 refused every write in the last 0.5 s of leading).
        # Within a nanosecond: 4.1 - 2.6 is 1.4999999999999996 in binary, and the chart (decimal arithmetic) let
        # such timings through to an operator that refused to start (found in review).
        if self.lease_duration_seconds - self.lease_renew_deadline_seconds < LEASE_WRITE_MARGIN_SECONDS - 1e-9:
            raise ValueError(
                f"leaseDurationSeconds ({self.lease_duration_seconds}) must exceed leaseRenewDeadlineSeconds "
                f"({self.lease_renew_deadline_seconds}) by at least {LEASE_WRITE_MARGIN_SECONDS:g} s: "
                "a member write started just inside the renew deadline must still land before a standby may take "
                "the Lease over"
            )
        return self

    @model_validator(mode="after")
    def _ports_apart(self) -> OperatorSettings:
        if self.probe_port == self.metrics_port:
            raise ValueError(
                f"probePort and metricsPort must differ (both {self.probe_port}): one server would not bind"
            )
        return self


_TYPOS_LOGGED: set[str] = set()
"""Variables already logged as a typo: kopf's login and startup both read the settings (and login again after a
401), and one warning a variable is enough."""


class SettingsError(ValueError):
    """The operator's environment holds a setting it cannot use; the message names each variable."""


def load_operator_settings() -> OperatorSettings:
    """OperatorSettings from the GRIDSHIFT_* environment variables, refused with the variables named.

    pydantic names the field (`plan_interval_seconds`), while a user set GRIDSHIFT_PLAN_INTERVAL_SECONDS
    (found in review); the value itself is not quoted (a URL may carry a key). A variable one typo away
    from a setting is ignored by pydantic: it is logged, naming the setting meant."""
    variables = {f"GRIDSHIFT_{name.upper()}": name for name in OperatorSettings.model_fields}
    for variable in sorted(os.environ):
        if variable.startswith("GRIDSHIFT_") and variable not in variables:
            meant = difflib.get_close_matches(variable, variables, n=1, cutoff=0.85)
            if meant and variable not in _TYPOS_LOGGED:
                _TYPOS_LOGGED.add(variable)
                log.warning("%s is not an operator setting and is ignored: did you mean %s?", variable, meant[0])
    try:
        return OperatorSettings()
    except ValidationError as error:
        problems = [
            f"GRIDSHIFT_{str(e['loc'][0]).upper()}: {e['msg']}"
            if e["loc"]
            else str(e["msg"]).removeprefix("Value error, ")
            for e in error.errors()
        ]
        raise SettingsError("operator settings: " + "; ".join(problems)) from None
