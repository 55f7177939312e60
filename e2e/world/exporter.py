"""Per-region /metrics endpoints: the vLLM series of every replica and the dcgm-exporter series of every GPU.

Prometheus scrapes processes, not pods, so each region gets one HTTP server on 127.0.0.1 standing
for all of that region's vLLM pods and dcgm-exporter pods at once:

- `/metrics/vllm`: vLLM V1 families, written by prometheus_client as vLLM itself does (counters
  with `_total` and `_created`), each series with vLLM's own labels (`engine`, `model_name`,
  `finished_reason`, `le`) plus the labels a PodMonitor would add to a per-pod target:
  `namespace`, `pod`, `gridshift_dev_deployment`.
- `/metrics/dcgm`: dcgm-exporter's text (its own writer, not prometheus_client: dcgm-exporter's
  energy counter has no `_total` suffix), GPU identity labels plus `container`, `namespace`, `pod`
  for GPUs held by a pod.
- `/metrics`: both.

Scrape with `honor_labels: true` (as for dcgm-exporter) so `namespace`/`pod` are kept, and add
`cluster`/`region` as target labels (see `prometheus.scrape_config`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from . import dcgm_metrics as dm
from . import labels as L
from . import vllm_metrics as vm
from .fleet import Fleet, Replica
from .httpserver import QuietHandler, WorldHTTPServer
from .labels import dcgm_model_name

_TARGET_LABELS = ("namespace", "pod", L.PROM_DEPLOYMENT_LABEL, L.PROM_GPU_TYPE_LABEL)


class VllmCollector(Collector):
    """The vLLM families of one cluster's replicas, read under the fleet lock."""

    def __init__(self, fleet: Fleet, cluster: str) -> None:
        self.fleet = fleet
        self.cluster = cluster
        self.started = time.time()

    def _gpu_type(self, replica: Replica) -> str:
        """What the PodMonitor copies from the pod label gridshift.dev/gpu-type (the operator sets it to
        the node's nvidia.com/gpu.product); a hand-made pod without it gets its node's product."""
        labelled = replica.pod.labels.get(L.GPU_TYPE)
        if labelled:
            return labelled
        node = self.fleet.clusters[replica.cluster].nodes.get(replica.pod.node or "")
        return node.gpu_product if node is not None else ""

    def collect(self) -> Iterator[Metric]:
        base_labels = ["engine", "model_name", *_TARGET_LABELS]
        with self.fleet.lock:
            engine = self.fleet.engine
            pods = self.fleet.clusters[self.cluster].pods
            # A stopping replica is scraped while its pod is listed (Prometheus discovers pods, NotReady and
            # terminating ones too); once the pod is gone, so is its target.
            replicas = [r for r in self.fleet.replicas.values() if r.cluster == self.cluster and r.key in pods]
            running = GaugeMetricFamily(*vm.NUM_REQUESTS_RUNNING, labels=base_labels)
            waiting = GaugeMetricFamily(*vm.NUM_REQUESTS_WAITING, labels=base_labels)
            kv = GaugeMetricFamily(*vm.KV_CACHE_USAGE, labels=base_labels)
            prompt = CounterMetricFamily(*vm.PROMPT_TOKENS, labels=base_labels)
            generation = CounterMetricFamily(*vm.GENERATION_TOKENS, labels=base_labels)
            success = CounterMetricFamily(*vm.REQUEST_SUCCESS, labels=[*base_labels, "finished_reason"])
            histograms = {
                family.name: HistogramMetricFamily(family.name, family.help, labels=base_labels)
                for family in vm.HISTOGRAMS
            }
            for replica in replicas:
                slot = replica.slot
                values = [
                    vm.ENGINE,
                    replica.pod.served_model_name,
                    replica.pod.namespace,
                    replica.pod.name,
                    replica.deployment,
                    self._gpu_type(replica),
                ]
                running.add_metric(values, float(engine.running[slot]))
                waiting.add_metric(values, float(engine.waiting[slot]))
                kv.add_metric(values, float(engine.kv_usage[slot]))
                prompt.add_metric(values, float(engine.prompt_tokens[slot]), created=self.started)
                generation.add_metric(values, float(engine.generation_tokens[slot]), created=self.started)
                for reason in vm.FINISHED_REASONS:
                    count = float(engine.requests_finished[slot]) if reason == "stop" else 0.0
                    success.add_metric([*values, reason], count, created=self.started)
                for name, family in histograms.items():
                    histogram = engine.histograms[name]
                    family.add_metric(values, histogram.cumulative(slot), float(histogram.sums[slot]))
        yield running
        yield waiting
        yield kv
        yield prompt
        yield generation
        yield success
        yield from histograms.values()


def dcgm_text(fleet: Fleet, cluster: str) -> str:
    """dcgm-exporter's exposition of every GPU of `cluster`'s nodes."""
    lines: dict[str, list[str]] = {name: [] for name, _, _ in (dm.POWER_USAGE, dm.TOTAL_ENERGY, dm.GPU_UTIL)}
    with fleet.lock:
        for index, gpu in enumerate(fleet.gpus):
            if gpu.cluster != cluster:
                continue
            labels = (
                f'gpu="{gpu.index}",UUID="{gpu.uuid}",pci_bus_id="{gpu.pci_bus_id}",device="nvidia{gpu.index}",'
                f'modelName="{dcgm_model_name(gpu.product)}",Hostname="{gpu.node}",'
                f'DCGM_FI_DRIVER_VERSION="{dm.DRIVER_VERSION}"'
            )
            holder = fleet.gpu_holders[index]
            if holder is not None:
                labels += (
                    f',container="{holder.container}",namespace="{holder.namespace}",pod="{holder.pod}",'
                    f'pod_uid="{holder.pod_uid}"'
                )
            power = float(fleet.gpu_power_w[index])
            lines[dm.POWER_USAGE[0]].append(f"{dm.POWER_USAGE[0]}{{{labels}}} {power:.6f}")
            energy = int(fleet.gpu_energy_mj[index])
            lines[dm.TOTAL_ENERGY[0]].append(f"{dm.TOTAL_ENERGY[0]}{{{labels}}} {energy}")
            util = _utilisation(fleet, index)
            lines[dm.GPU_UTIL[0]].append(f"{dm.GPU_UTIL[0]}{{{labels}}} {util}")
    out: list[str] = []
    for name, help_text, kind in (dm.GPU_UTIL, dm.POWER_USAGE, dm.TOTAL_ENERGY):
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *lines[name]]
    return "\n".join(out) + "\n"


def _utilisation(fleet: Fleet, gpu_index: int) -> int:
    """SM-busy share in %, as DCGM reports it: 100 while the engine steps, 0 when idle."""
    slot = int(fleet.gpu_slot[gpu_index])
    if slot < 0:
        return 0
    engine = fleet.engine
    return 100 if engine.running[slot] > 0 else 0


class RegionExporter:
    """One region's HTTP server; `stop()`/`start()` are the exporter-down fault."""

    def __init__(self, fleet: Fleet, cluster: str, port: int = 0, host: str = "127.0.0.1") -> None:
        self.fleet = fleet
        self.cluster = cluster
        self.host = host
        self.port = port
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(VllmCollector(fleet, cluster))
        self._server: WorldHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def up(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        if self._server is not None:
            return
        exporter = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0].rstrip("/")
                if path == "/metrics/vllm":
                    body = generate_latest(exporter.registry)
                elif path == "/metrics/dcgm":
                    body = dcgm_text(exporter.fleet, exporter.cluster).encode()
                elif path == "/metrics":
                    body = generate_latest(exporter.registry) + dcgm_text(exporter.fleet, exporter.cluster).encode()
                else:
                    self.send_error(404, "try /metrics, /metrics/vllm or /metrics/dcgm")
                    return
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = WorldHTTPServer((self.host, self.port), Handler, f"exporter-{self.cluster}")
        self.port = server.port
        self._server = server
        server.start()

    def stop(self) -> None:
        """Closes the socket: scrapes get connection refused, Prometheus marks the targets down."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
