"""Measured load, latency and power of a deployment: the `MetricsSource` Protocol and its adapters.

`PrometheusMetricsSource` evaluates the PromQL of `gridshift.signals.promql` through
prometheus-api-client; `gridshift.testing.FakeMetricsSource` holds values set by a test.
Both answer `deployment_signals(ref, at)` (one deployment) and `cluster_signals(refs, at)` (every
deployment of one cluster, one query per signal whatever their number, the queries sent at once: the
operator's cycle uses this) the same way (tests/signals/test_metrics_contract.py).
A signal with no series (no traffic yet, exporter missing) is reported missing, never as 0.
A failed query of a signal demand is not read from (not in DEMAND_SIGNALS) leaves that signal missing, its error in
`DeploymentSignals.failed`; one of DEMAND_SIGNALS that fails fails the call (MetricsError).
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any, Protocol

import httpx
import requests
import urllib3
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from gridshift import redaction
from gridshift.redaction import display_url
from gridshift.signals.http import HttpxAdapter, retry_after_seconds, split_query
from gridshift.signals.labels import DeploymentRef, LabelScheme
from gridshift.signals.prices import PriceFetchError
from gridshift.signals.promql import (
    BUCKET_LABEL,
    PER_BUCKET_SIGNALS,
    PER_POD_SIGNALS,
    GroupScope,
    Signal,
    build_grouped_queries,
    build_queries,
    group_key,
    group_labels,
)
from gridshift.signals.settings import MetricsSettings

DEMAND_SIGNALS = frozenset(
    {
        Signal.REQUEST_RATE,
        Signal.REQUESTS_WAITING,
        Signal.PROMPT_TOKEN_RATE,
        Signal.GENERATION_TOKEN_RATE,
        Signal.REPLICAS_REPORTING,
    }
)
"""The signals measured demand is made of (service.inputs.observed_demand): when one's query fails, every deployment
of the cluster has no metrics this cycle (demand unknown, replicas held), as one missing would be read wrongly (no
queue, the spec's mean lengths, no replica reporting). Any other signal's failed query leaves that signal missing,
as if it had no series, which its readers already take as not measured: request classes from the spec, no measured
latency or J/token. Found in review: the by-`le` prompt-tokens answer, made too large by one tenant's replica, set
every deployment of the cluster, other tenants' included, to no metrics (docs/security.md)."""


class MetricsError(Exception):
    """A query could not be answered; `retryable` when trying again later may succeed."""

    def __init__(
        self,
        source: str,
        signal: str,
        message: str,
        *,
        retryable: bool,
        retry_after_seconds: float | None = None,
        timed_out: bool = False,
    ) -> None:
        # Its text reaches status (service.errors passes it as it is): a remembered secret never does (self-review).
        super().__init__(redaction.redact(f"metrics source {source!r}, signal {signal}: {message}"))
        self.source = source
        self.signal = signal
        self.retryable = retryable
        self.retry_after_seconds = retry_after_seconds
        """What the server's `Retry-After` asked for (429 or 503), seconds; None without one."""
        self.timed_out = timed_out
        """No answer in time (a query's timeout, or the source's deadline): the routing grace says so in its own
        fixed words, apart from a query that failed (service.observe, planner.migration.Unmeasured)."""


class ImplausibleDemand(ValueError):
    """Measured demand beyond what the deployment could state as Static demand (service.inputs). Its series
    come from the deployment's own replicas, whose image the deployment's owner chooses: they are not
    believed, and its demand is unknown this cycle. The message gives figures, never a label or URL."""


class UnreportedReplicas(ImplausibleDemand):
    """Fewer of a deployment's replica pods report vLLM metrics in a cluster than it has Ready there (a pod
    whose /metrics scrape fails still serves): the measured rates leave its traffic out, and are not believed.
    The message names the cluster and the counts."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant-vector answer."""

    labels: Mapping[str, str]
    value: float


SignalValue = float | Mapping[str, float]
"""One number, or one number per replica pod for `PER_POD_SIGNALS`, or per bucket edge (`le`) for
`PER_BUCKET_SIGNALS`."""


@dataclass(frozen=True)
class DeploymentSignals:
    """What was measured for one deployment in one cluster, at one instant."""

    deployment: DeploymentRef
    observed_at: datetime
    values: Mapping[Signal, SignalValue] = field(default_factory=dict)
    """Signals that had data; a signal absent here is in `missing`."""
    failed: Mapping[Signal, str] = field(default_factory=dict)
    """Signals (never DEMAND_SIGNALS) whose query failed, with the error: missing too, and the same for every
    deployment of the call (one query answers them all); the operator reports each error once per cluster."""

    @property
    def missing(self) -> frozenset[Signal]:
        """Signals with no series (or an undefined value such as a quantile with no traffic)."""
        return frozenset(Signal) - frozenset(self.values)

    def scalar(self, signal: Signal) -> float | None:
        """The value of a one-number signal, None when missing."""
        if signal in PER_POD_SIGNALS or signal in PER_BUCKET_SIGNALS:
            raise ValueError(f"{signal} is per pod or per bucket; use per_pod() or buckets()")
        value = self.values.get(signal)
        return float(value) if isinstance(value, int | float) else None

    def buckets(self, signal: Signal) -> list[tuple[float, float]]:
        """A per-bucket signal as (upper edge, cumulative count) pairs sorted by edge, empty when missing."""
        if signal not in PER_BUCKET_SIGNALS:
            raise ValueError(f"{signal} is not a histogram; use scalar() or per_pod()")
        value = self.values.get(signal)
        if not isinstance(value, Mapping):
            return []
        return sorted(
            (edge, float(count))
            for label, count in value.items()
            if (edge := _bucket_edge(label)) is not None and math.isfinite(count) and count >= 0
        )

    def per_pod(self, signal: Signal) -> Mapping[str, float]:
        """The value of a per-pod signal by pod name, empty when missing."""
        if signal not in PER_POD_SIGNALS:
            raise ValueError(f"{signal} is one number; use scalar()")
        value = self.values.get(signal)
        return value if isinstance(value, Mapping) else {}


class MetricsSource(Protocol):
    """Where measured signals come from."""

    def deployment_signals(self, ref: DeploymentRef, at: datetime) -> DeploymentSignals:
        """Every signal of `ref` evaluated at `at`; raises MetricsError when one of DEMAND_SIGNALS fails (another's
        failure is in DeploymentSignals.failed)."""
        ...

    def cluster_signals(self, refs: Sequence[DeploymentRef], at: datetime) -> dict[DeploymentRef, DeploymentSignals]:
        """Every signal of every ref (all in one member cluster), as `deployment_signals` gives each,
        with one query per signal whatever the number of refs; raises MetricsError when the source fails (a
        signal of DEMAND_SIGNALS fails; another's failure is in each ref's DeploymentSignals.failed)."""
        ...


def signals_from_samples(
    source: str, ref: DeploymentRef, at: datetime, answers: Mapping[Signal, list[Sample]], pod_label: str
) -> DeploymentSignals:
    """Turns query answers into DeploymentSignals: undefined values are missing, not zero."""
    values: dict[Signal, SignalValue] = {}
    for signal, samples in answers.items():
        if signal in PER_BUCKET_SIGNALS:
            per_edge = {
                s.labels[BUCKET_LABEL]: s.value for s in samples if BUCKET_LABEL in s.labels and math.isfinite(s.value)
            }
            if per_edge:
                values[signal] = per_edge
            continue
        if signal in PER_POD_SIGNALS:
            per_pod: dict[str, float] = {}
            for sample in samples:
                pod = sample.labels.get(pod_label)
                if pod is None:
                    raise MetricsError(source, signal, f"a series lacks the {pod_label!r} label", retryable=False)
                if math.isfinite(sample.value):
                    # Summed, so an answer with one series per GPU still gives one figure per pod.
                    per_pod[pod] = per_pod.get(pod, 0.0) + sample.value
            if per_pod:
                values[signal] = per_pod
            continue
        if len(samples) > 1:
            raise MetricsError(
                source, signal, f"expected one series, got {len(samples)}: the query must aggregate", retryable=False
            )
        if samples and math.isfinite(samples[0].value):
            values[signal] = samples[0].value
    return DeploymentSignals(deployment=ref, observed_at=at, values=values)


def is_timeout(error: BaseException) -> bool:
    """Whether a requests error was, underneath, a timeout (connect, read, or a stalled body)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError):
            return True
        nested = [a for a in getattr(seen, "args", ()) if isinstance(a, BaseException)]
        seen = nested[0] if nested else seen.__cause__ or seen.__context__
    return False


_PROMETHEUS_PARAMS = frozenset({"query", "time"})
"""The instant query's parameters the adapter sets: a prometheusUrl's query string does not replace them."""


def prometheus_endpoint(url: str) -> tuple[str, dict[str, list[str]]]:
    """A Prometheus URL as prometheus-api-client takes it (no query string, no trailing slash), and its query
    string's parameters, to send with every query beside `query` and `time` (which they cannot replace). Their
    values are secrets to every log and error from now on (signals.http.split_query).

    One path for every Prometheus client: this source's and the Prometheus price and carbon feeds'
    (signals.price_feeds). Found in review: the URL stayed whole where prometheus-api-client appends
    /api/v1/query to it, so every query went to /prom with api_key="s3cr3t/api/v1/query" and failed."""
    base, params = split_query(url, _PROMETHEUS_PARAMS)
    return base.rstrip("/"), params


_STATUS_IN_MESSAGE = re.compile(r"HTTP Status Code (\d{3}) \((.*)\)\s*$", re.DOTALL)


def _explain_http_error(text: str) -> tuple[int | None, str]:
    """Status code and Prometheus' own `error` text from prometheus-api-client's exception message."""
    match = _STATUS_IN_MESSAGE.search(text)
    if match is None:
        return None, text
    status, body = int(match.group(1)), match.group(2)
    start, end = body.find("{"), body.rfind("}")
    if start >= 0 and end > start:
        try:
            document = json.loads(body[start : end + 1].encode().decode("unicode_escape"))
            if isinstance(document, dict) and "error" in document:
                return status, f"{document.get('errorType', 'error')}: {document['error']}"
        except ValueError:
            pass
    return status, redaction.excerpt(body, 200)  # redacted before it is cut (a cut secret is not recognised)


def _parse_vector(source: str, signal: str, result: Any) -> list[Sample]:
    if not isinstance(result, list):
        raise MetricsError(source, signal, "answer's data.result is not a list", retryable=False)
    samples = []
    for index, item in enumerate(result):
        try:
            labels = item["metric"]
            _, text = item["value"]
            samples.append(Sample(labels={str(k): str(v) for k, v in labels.items()}, value=float(text)))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise MetricsError(
                source, signal, f"result[{index}] is not an instant-vector sample ({error!r})", retryable=False
            ) from error
    return samples


class PrometheusMetricsSource:
    """Reads signals from one Prometheus (one per member cluster, or one for all with a cluster label)."""

    def __init__(
        self,
        url: str,
        *,
        settings: MetricsSettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.name = display_url(url.rstrip("/"))
        """The URL as errors name it: no query string, no credentials (a Prometheus behind a proxy may
        take its key as a query parameter)."""
        # The query string is sent with every query, beside Prometheus' own parameters (which win).
        self.url, self._url_params = prometheus_endpoint(url)
        self.settings = settings or MetricsSettings()
        self._sleep = sleep
        # Retries are ours (injected sleep, one policy for every adapter), so urllib3's are off.
        session = session or requests.Session()
        self._client = PrometheusConnect(
            url=self.url,
            headers=dict(headers) if headers else None,
            retry=Retry(total=False),
            session=session,
            timeout=self.settings.query_timeout_seconds,
        )
        # Through the feeds' exchange (a total deadline, a cap on the answer), mounted after the client's
        # own adapter: requests' per-operation timeout let a server dripping its answer hold a worker
        # for as long as it dripped (15 s against a 1 s timeout, found in review, 3 December 2026).
        adapter = HttpxAdapter(
            httpx.Client(),
            self.name,
            timeout_seconds=self.settings.query_timeout_seconds,
            max_body_bytes=self.settings.max_answer_bytes,
        )
        for prefix in (self.url, "http://", "https://"):
            session.mount(prefix, adapter)
        self._adapter = adapter
        # Each cluster_signals call sends its queries at once on threads of its own (at most
        # max_concurrent_queries), so a cycle waits for a cluster's slowest query, not the sum of a dozen (found
        # in review: at 1.8 s a query, one after another, the cluster missed the 20 s metricsDeadlineSeconds).
        # Calls on one Prometheus share only the wider max_queries_in_flight (found in review: one pool of 12 per
        # URL made 24 clusters on one Thanos take 24 query times, 24.2 s at 1 s a query).
        self._in_flight = threading.BoundedSemaphore(self.settings.max_queries_in_flight)

    def query_vector(
        self, promql: str, at: datetime, *, signal: str = "query", deadline: float | None = None
    ) -> list[Sample]:
        """Evaluates `promql` at `at`; retries transient failures, then raises MetricsError. No retry starts at or
        past `deadline` (time.monotonic), after which the caller uses no answer: found in review, queries a
        cycle had given up on went on retrying for ~36 s, holding in-flight slots and tripling the load on an
        overloaded Prometheus."""
        policy = self.settings.retry
        for attempt in range(1, policy.max_attempts + 1):
            try:
                return self._query_once(promql, at, signal)
            except MetricsError as error:
                pause = policy.backoff_seconds(attempt, error.retry_after_seconds)
                late = deadline is not None and time.monotonic() + pause >= deadline
                if not error.retryable or attempt == policy.max_attempts or late:
                    raise
                self._sleep(pause)
        raise AssertionError("unreachable: the last attempt raises")

    def _query_once(self, promql: str, at: datetime, signal: str) -> list[Sample]:
        source = self.name
        try:
            # partial_response=false: Thanos answers a query some store did not answer with the rest of the
            # series by default, and prometheus-api-client drops the warnings that say so; a partial sum read as
            # the whole lowered demand and removed replicas (found in review: 30 of 60 req/s, 16 -> 10
            # replicas). Refused, the signal is unknown and replicas are held. Prometheus and Mimir ignore the
            # parameter; one given in the URL is the user's choice and wins.
            params: dict[str, Any] = {"partial_response": "false", **self._url_params, "time": f"{at.timestamp():.3f}"}
            result = self._client.custom_query(query=promql, params=params)
        except PrometheusApiClientException as error:
            status, explanation = _explain_http_error(str(error))
            retryable = status is None or status == 429 or status >= 500
            # prometheus-api-client's exception drops the headers; the adapter kept this thread's (a Thanos or
            # proxy shedding load says how long to stay away, and 2 s then 4 s came back too early).
            wait = retry_after_seconds(self._adapter.last_headers()) if status in (429, 503) else None
            raise MetricsError(
                source, signal, f"HTTP {status}: {explanation}", retryable=retryable, retry_after_seconds=wait
            ) from error
        except PriceFetchError as error:  # the exchange's cap on the answer (HttpxAdapter)
            raise MetricsError(source, signal, error.detail, retryable=False) from None
        except requests.exceptions.JSONDecodeError as error:
            raise MetricsError(source, signal, f"answer is not JSON ({error})", retryable=False) from error
        except requests.exceptions.RequestException as error:
            if is_timeout(error):  # a Timeout, or a body that stalls (a ConnectionError in requests)
                raise MetricsError(
                    source,
                    signal,
                    f"no answer within {self.settings.query_timeout_seconds} s",
                    retryable=True,
                    timed_out=True,
                ) from error
            raise MetricsError(source, signal, f"request failed ({type(error).__name__})", retryable=True) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            # With urllib3's own retries off, a refused connection surfaces unwrapped by requests.
            raise MetricsError(source, signal, f"cannot connect ({type(error).__name__})", retryable=True) from error
        except (KeyError, TypeError) as error:
            # prometheus-api-client indexes ["data"]["result"] without checking "status".
            raise MetricsError(
                source, signal, f"answer has no data.result (status is not success?): {error!r}", retryable=False
            ) from error
        return _parse_vector(source, signal, result)

    def deployment_signals(self, ref: DeploymentRef, at: datetime) -> DeploymentSignals:
        # One after another, stopping at the first failure of DEMAND_SIGNALS: one deployment, for the library and
        # its tests (the operator's cycle asks cluster_signals).
        queries = build_queries(self.settings.labels, ref, self.settings.windows)
        answers, failed = gather(
            {signal: partial(self.query_vector, promql, at, signal=signal) for signal, promql in queries.items()}
        )
        return replace(signals_from_samples(self.name, ref, at, answers, self.settings.labels.pod_label), failed=failed)

    def cluster_signals(self, refs: Sequence[DeploymentRef], at: datetime) -> dict[DeploymentRef, DeploymentSignals]:
        scheme = self.settings.labels
        limit = self.settings.deadline_seconds
        deadline = None if limit is None else time.monotonic() + limit
        by_cluster: dict[str | None, list[DeploymentRef]] = {}
        for ref in refs:
            by_cluster.setdefault(ref.cluster if scheme.cluster_label is not None else None, []).append(ref)
        groups = sorted(by_cluster.items(), key=lambda item: item[0] or "")
        pending: list[tuple[list[DeploymentRef], dict[Signal, Future[list[Sample]]]]] = []
        # Threads start only as queries need them, and end with the call.
        pool = ThreadPoolExecutor(
            max_workers=self.settings.max_concurrent_queries, thread_name_prefix="gridshift-promql"
        )
        out: dict[DeploymentRef, DeploymentSignals] = {}
        try:
            for cluster, members in groups:
                scope = GroupScope(tuple(sorted({r.workload_namespace for r in members})), cluster)
                queries = build_grouped_queries(scheme, scope, self.settings.windows)
                futures = {
                    signal: pool.submit(self._query_in_flight, promql, at, signal, deadline)
                    for signal, promql in queries.items()
                }
                pending.append((members, futures))
            for members, futures in pending:
                # Read in the queries' order, so the error raised is the same whatever answers first.
                answers, failed = gather(
                    {signal: partial(self._answer, future, signal, deadline) for signal, future in futures.items()}
                )
                out.update(split_grouped(self.name, members, at, answers, scheme, failed))
        finally:
            # After a failure or past the deadline, queries not yet sent are not sent; one in flight ends by its
            # own timeout on its thread, its answer dropped (the caller no longer waits for it).
            pool.shutdown(wait=False, cancel_futures=True)
        return out

    def _query_in_flight(self, promql: str, at: datetime, signal: str, deadline: float | None) -> list[Sample]:
        """`query_vector` once one of the source's max_queries_in_flight is free, if before `deadline`."""
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._in_flight.acquire(timeout=wait):
            raise self._late(signal)
        try:
            return self.query_vector(promql, at, signal=signal, deadline=deadline)
        finally:
            self._in_flight.release()

    def _answer(self, future: Future[list[Sample]], signal: str, deadline: float | None) -> list[Sample]:
        try:
            return future.result(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            raise self._late(signal) from None

    def _late(self, signal: str) -> MetricsError:
        return MetricsError(
            self.name,
            signal,
            f"no answer within the {self.settings.deadline_seconds:g} s deadline",
            retryable=True,
            timed_out=True,
        )


def gather(
    reads: Mapping[Signal, Callable[[], list[Sample]]],
) -> tuple[dict[Signal, list[Sample]], dict[Signal, str]]:
    """Each signal's answer, read in order, and the errors of those that failed. A failure of one of DEMAND_SIGNALS
    is raised; any other signal's leaves it with no series, its error kept, so one signal that cannot be answered
    costs that signal alone (found in review: one tenant's by-`le` series made one answer too large, and every
    deployment of the cluster had no metrics)."""
    answers: dict[Signal, list[Sample]] = {}
    failed: dict[Signal, str] = {}
    for signal, read in reads.items():
        try:
            answers[signal] = read()
        except MetricsError as error:
            if signal in DEMAND_SIGNALS:
                raise
            answers[signal], failed[signal] = [], str(error)
    return answers, failed


def split_grouped(
    source: str,
    refs: Sequence[DeploymentRef],
    at: datetime,
    answers: Mapping[Signal, list[Sample]],
    scheme: LabelScheme,
    failed: Mapping[Signal, str] | None = None,
) -> dict[DeploymentRef, DeploymentSignals]:
    """Grouped answers (series labelled by `group_labels`) split into each ref's DeploymentSignals; `failed` (signals
    whose query failed, with the error, as `gather` gives them) is every ref's."""
    labels = group_labels(scheme)
    by_key: dict[tuple[str, ...], dict[Signal, list[Sample]]] = {}
    for signal, samples in answers.items():
        for sample in samples:
            key = tuple(sample.labels.get(label, "") for label in labels)
            by_key.setdefault(key, {}).setdefault(signal, []).append(sample)
    out = {}
    for ref in refs:
        found = by_key.get(group_key(scheme, ref), {})
        per_ref = {signal: found.get(signal, []) for signal in answers}
        out[ref] = replace(signals_from_samples(source, ref, at, per_ref, scheme.pod_label), failed=dict(failed or {}))
    return out


def _bucket_edge(label: str) -> float | None:
    """A bucket's `le` as a number, None for one vLLM never writes (the series come from the deployment's own
    replicas, whose image its owner chooses: found in review, `le="abc"` ended every tenant's planning cycle)."""
    try:
        edge = float(label)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(edge) or edge < 0 else edge
