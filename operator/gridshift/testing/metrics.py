"""`FakeMetricsSource`: the MetricsSource Protocol answering values a test sets; passes
tests/signals/test_metrics_contract.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial

from gridshift.signals.labels import DeploymentRef
from gridshift.signals.metrics import (
    DeploymentSignals,
    MetricsError,
    Sample,
    SignalValue,
    gather,
    signals_from_samples,
)
from gridshift.signals.promql import BUCKET_LABEL, PER_BUCKET_SIGNALS, PER_POD_SIGNALS, Signal

EVERY_REPLICA = 1_000_000.0
"""Signal.REPLICAS_REPORTING as the fake answers it by default: more pods than any deployment has Ready."""


class FakeMetricsSource:
    """Holds signal values set by tests or the simulated world; answers like the Prometheus adapter."""

    name = "fake"

    def __init__(self, *, every_replica_reports: bool = True) -> None:
        """`every_replica_reports`: a deployment with any signal set and no Signal.REPLICAS_REPORTING answers
        EVERY_REPLICA for it, as a Prometheus scraping each of its pods would (tests that set the rates alone
        need not follow its Ready count); False answers only what was set (the contract test)."""
        self._values: dict[DeploymentRef, dict[Signal, SignalValue]] = {}
        self._every_replica_reports = every_replica_reports
        self._failure: MetricsError | None = None
        self._failed: dict[Signal, MetricsError] = {}
        self.queries = 0
        """Queries a Prometheus would have answered: one per signal per call, as the real adapter makes."""

    def set_signal(self, ref: DeploymentRef, signal: Signal, value: SignalValue) -> None:
        """Makes `signal` of `ref` read `value` (a float, or pod -> float for per-pod signals)."""
        keyed = signal in PER_POD_SIGNALS or signal in PER_BUCKET_SIGNALS
        if keyed != isinstance(value, Mapping):
            raise TypeError(f"{signal}: {'mapping (per pod or per le)' if keyed else 'float'} expected")
        self._values.setdefault(ref, {})[signal] = dict(value) if isinstance(value, Mapping) else float(value)

    def clear_signal(self, ref: DeploymentRef, signal: Signal) -> None:
        """Makes `signal` of `ref` have no series, as Prometheus answers for one it holds none of."""
        self._values.get(ref, {}).pop(signal, None)

    def fail(self, message: str, *, retryable: bool, timed_out: bool = False) -> None:
        """Makes every later read raise MetricsError until `recover()` (`timed_out`: as the real source's own
        deadline or a query's timeout raises it)."""
        self._failure = MetricsError(self.name, "all", message, retryable=retryable, timed_out=timed_out)

    def fail_signal(self, signal: Signal, message: str) -> None:
        """Makes `signal`'s query fail until `recover()`, as the Prometheus adapter takes it: the read raises for one
        of DEMAND_SIGNALS; any other signal is missing for every deployment, its error in DeploymentSignals.failed."""
        self._failed[signal] = MetricsError(self.name, signal, message, retryable=False)

    def recover(self) -> None:
        self._failure = None
        self._failed.clear()

    def cluster_signals(self, refs: Sequence[DeploymentRef], at: datetime) -> dict[DeploymentRef, DeploymentSignals]:
        if self._failure is not None:
            raise self._failure
        self.queries += len(Signal) * len({ref.cluster for ref in refs})
        return {ref: self._answer(ref, at) for ref in refs}

    def deployment_signals(self, ref: DeploymentRef, at: datetime) -> DeploymentSignals:
        if self._failure is not None:
            raise self._failure
        self.queries += len(Signal)
        return self._answer(ref, at)

    def _answer(self, ref: DeploymentRef, at: datetime) -> DeploymentSignals:
        values = dict(self._values.get(ref, {}))
        if values and self._every_replica_reports:
            values.setdefault(Signal.REPLICAS_REPORTING, EVERY_REPLICA)

        def read(signal: Signal) -> list[Sample]:
            error = self._failed.get(signal)
            if error is not None:
                raise error
            value = values.get(signal)
            if value is None:
                return []
            if isinstance(value, Mapping):
                label = BUCKET_LABEL if signal in PER_BUCKET_SIGNALS else "pod"
                return [Sample(labels={label: key}, value=v) for key, v in value.items()]
            return [Sample(labels={}, value=value)]

        # The real adapter's rule, through its own code: a failed signal of DEMAND_SIGNALS raises, another's is
        # missing with its error in `failed`.
        answers, failed = gather({signal: partial(read, signal) for signal in Signal})
        return replace(signals_from_samples(self.name, ref, at, answers, "pod"), failed=failed)
