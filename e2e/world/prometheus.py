"""Prometheus scrape configuration for the world's exporters.

Two jobs per region, as a real cluster has (a vLLM PodMonitor and dcgm-exporter), both with
`honor_labels: true` so the `namespace`/`pod` labels the exporter writes are kept, and the target
labels `cluster` and `region` a multi-cluster setup adds. Scrape interval: real seconds; at speed
360 a 1 s scrape is one sample per 6 simulated minutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from . import labels as L


def scrape_configs(
    exporters: Mapping[str, str], regions: Mapping[str, str] | None = None, *, interval: str = "1s"
) -> list[dict[str, Any]]:
    """Scrape configs for `exporters` (cluster -> exporter base URL, as `World.endpoints()["exporters"]`)."""
    configs: list[dict[str, Any]] = []
    for cluster, url in sorted(exporters.items()):
        target = urlsplit(url).netloc
        labels = {L.PROM_CLUSTER_LABEL: cluster, L.PROM_REGION_LABEL: (regions or {}).get(cluster, cluster)}
        for job, path in (("vllm", "/metrics/vllm"), ("dcgm-exporter", "/metrics/dcgm")):
            configs.append(
                {
                    "job_name": f"{job}-{cluster}",
                    "honor_labels": True,
                    "metrics_path": path,
                    "scrape_interval": interval,
                    "scrape_timeout": interval,
                    "static_configs": [{"targets": [target], "labels": labels}],
                }
            )
    return configs
