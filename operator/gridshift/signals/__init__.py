"""Signals: what gridshift measures and reads from outside, behind small Protocols.

- Metrics (`metrics`, `promql`, `labels`): vLLM load and latency and DCGM power per deployment,
  read from Prometheus; `gridshift.testing.FakeMetricsSource` stands in for tests.
- Electricity prices (`prices`, `entsoe`, `price_feeds`, `price_csv`, `price_service`): one
  `PriceFeed` Protocol with an adapter per `PriceFeedSpec.type`, validated series, conversion to
  USD/kWh, and a managed wrapper adding caching, retries and the stale state.
"""
