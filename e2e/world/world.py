"""The simulated world: one clock driving the fleet, its exporters, the price server and the faults.

`World` wires the parts together and runs two threads: the simulation (advances the fleet in
ticks of simulated time until it reaches the clock) and the poller (reads the clusters' pods and
nodes and the hub's routing weights about once a real second, and releases timed faults).
Tests drive it through the Python methods; anything else through the control server
(`control.ControlServer`), e.g. GET /clock.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .carbon import CarbonApi, CarbonBook, CarbonServer
from .clock import WorldClock
from .control import ControlServer
from .exporter import RegionExporter
from .feedserver import FeedFault, FeedFaultMode
from .fleet import Fleet, LoadSpec
from .kube import (
    ClusterPower,
    ClusterReader,
    ClusterUnavailable,
    KubeClusterReader,
    KubeReadinessWriter,
    KubeRoutingReader,
    ReadinessWriter,
    RoutingReader,
)
from .prices import PriceApi, PriceBook, PriceServer
from .profiles import REPO_ROOT, SHIPPED_PROFILES, ProfileCatalog

log = logging.getLogger("gridshift.world")

DEFAULT_KUBECONFIG_DIR = REPO_ROOT / ".gridshift" / "kubeconfigs"
MAX_REAL_SECONDS_PER_TICK = 2.0
"""Real time one step may account for: a machine that stalled for longer does not book its stall as load."""
MAX_CATCH_UP_TICK_S = 5.0
"""Longest simulation step when catching up, simulated s: still shorter than most requests (or twice
the chosen step, when a coarse step was chosen)."""


@dataclass(frozen=True)
class WorldSettings:
    """How the world runs; every field says its unit and why its default."""

    start: datetime = datetime(2024, 6, 3, tzinfo=UTC)
    """Simulated time at start: a Monday in 2024, the year the price data cover."""
    speed: float = 360.0
    """Simulated seconds per real second: one simulated hour every 10 real seconds, so a day of
    prices passes in 4 minutes while a request's latency (0.1-30 s) still spans several ticks."""
    tick_sim_seconds: float | None = None
    """Simulation step, simulated s; None picks speed/180 within [0.25, 2] (2 s at speed 360, so 180
    steps per real second, ~15% of a core): the CPU cost is per step, so faster clocks take coarser
    steps. Only queueing is resolved at step granularity (docs/world.md)."""
    catch_up: bool = True
    """Lengthen steps (up to MAX_CATCH_UP_TICK_S) while the simulation trails the clock. Longer steps
    admit a waiting request only at their start, which starves a replica whose batch is full;
    make demo turns this off and slows its clock instead."""
    poll_interval_s: float = 1.0
    """Real seconds between reads of the clusters' pods and the hub's routing: a scaled pod shows up
    in the fleet within about this long."""
    default_load: LoadSpec | None = field(default_factory=LoadSpec)
    """Load of a deployment with no load set: the conversation trace at 10 requests/s."""
    loads: Mapping[str, LoadSpec] = field(default_factory=dict)
    """Per deployment key `<namespace>.<name>`."""
    max_num_batched_tokens: int = 2048
    """vLLM's chunked-prefill token budget per step (its default for online serving on most GPUs)."""
    seed: int = 0
    """Seed of the routing draws, so a run is reproducible."""
    host: str = "127.0.0.1"
    control_port: int = 0
    """0 = any free port (read `World.control.url`)."""
    price_port: int = 0
    exporter_ports: Mapping[str, int] = field(default_factory=dict)
    """Cluster -> port of its exporter; 0 or absent = any free port."""
    regions: Mapping[str, str] = field(default_factory=dict)
    """Cluster -> region label; absent = the cluster's name."""
    price_csv: Path | None = None
    """Wide hourly price CSV; None = shared/data/prices-2024/prices_2024_utc_hourly_wide.csv."""
    entsoe_tokens: frozenset[str] | None = None
    """securityTokens the ENTSO-E endpoint accepts; None accepts any non-empty token."""
    carbon_dir: Path | None = None
    """Hourly carbon-intensity CSVs per zone; None = shared/data/carbon-2024."""
    carbon_port: int = 0
    profile_dir: Path | None = SHIPPED_PROFILES
    """GPUProfile documents to simulate with (operator/gridshift/data/profiles by default)."""

    def tick(self) -> float:
        if self.tick_sim_seconds is not None:
            if not self.tick_sim_seconds > 0:
                raise ValueError(f"tick_sim_seconds: must be > 0, got {self.tick_sim_seconds}")
            return self.tick_sim_seconds
        return min(2.0, max(0.25, self.speed / 180.0))


@dataclass
class _DelayedReadiness:
    cluster: str
    namespace: str
    pod: str
    release_at: datetime


class World:
    """Clock, fleet, exporters, price server and faults; `start()` runs it, `stop()` tears it down."""

    def __init__(
        self,
        settings: WorldSettings,
        *,
        readers: Mapping[str, ClusterReader],
        routing: RoutingReader | None = None,
        readiness: ReadinessWriter | None = None,
        power: ClusterPower | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.clock = WorldClock(settings.start, settings.speed, monotonic=monotonic)
        self.readers = dict(readers)
        self.routing_reader = routing
        self.readiness = readiness
        self.power = power
        regions = {name: settings.regions.get(name, name) for name in self.readers}
        self.fleet = Fleet(
            ProfileCatalog(settings.profile_dir),
            regions=regions,
            default_load=settings.default_load,
            max_num_batched_tokens=settings.max_num_batched_tokens,
            seed=settings.seed,
        )
        for deployment, load in settings.loads.items():
            self.fleet.set_load(deployment, load)
        self.exporters = {
            name: RegionExporter(self.fleet, name, settings.exporter_ports.get(name, 0), settings.host)
            for name in self.readers
        }
        self.prices = PriceServer(
            PriceApi(PriceBook(settings.price_csv), tokens=settings.entsoe_tokens),
            self.clock.now,
            settings.price_port,
            settings.host,
        )
        self.carbon = CarbonServer(
            CarbonApi(CarbonBook(settings.carbon_dir)), self.clock.now, settings.carbon_port, settings.host
        )
        self.control = ControlServer(self, settings.control_port, settings.host)
        self.stopped_apiservers: set[str] = set()
        self.cluster_errors: dict[str, str] = {}
        self._delayed: list[_DelayedReadiness] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.tick_s = settings.tick()
        self.sim_cpu_seconds = 0.0
        self._last_tick_real: float | None = None
        self.failure: str | None = None
        """Why the simulation thread died (None while it runs): the control server answers 500 with it."""

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def from_kubeconfigs(
        cls,
        settings: WorldSettings,
        *,
        kubeconfig_dir: Path = DEFAULT_KUBECONFIG_DIR,
        kubeconfigs: Mapping[str, Path] | None = None,
        hub: str = "hub",
        power: ClusterPower | None = None,
    ) -> World:
        """A world over real clusters: every kubeconfig but the hub's is a region."""
        paths = (
            dict(kubeconfigs) if kubeconfigs is not None else {p.stem: p for p in sorted(kubeconfig_dir.glob("*.yaml"))}
        )
        if hub not in paths:
            raise FileNotFoundError(f"hub kubeconfig {hub!r} not among {sorted(paths)} (run `make cluster-up`)")
        readers = {name: KubeClusterReader(name, path) for name, path in paths.items() if name != hub}
        if not readers:
            raise FileNotFoundError(f"no regional kubeconfigs besides the hub's in {sorted(paths)}")
        return cls(
            settings,
            readers=readers,
            routing=KubeRoutingReader(paths[hub]),
            readiness=KubeReadinessWriter(readers),
            power=power,
        )

    def start(self) -> World:
        for exporter in self.exporters.values():
            exporter.start()
        self.prices.start()
        self.carbon.start()
        self.control.start()
        self.poll_once()
        for target, name in ((self._simulate, "world-sim"), (self._poll, "world-poll")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        for exporter in self.exporters.values():
            exporter.stop()
        self.prices.stop()
        self.carbon.stop()
        self.control.stop()
        if self.power is not None:
            for cluster in sorted(self.stopped_apiservers):
                self.power.start(cluster)
            self.stopped_apiservers.clear()

    def __enter__(self) -> World:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ simulation

    def sim_seconds(self, instant: datetime | None = None) -> float:
        return ((instant or self.clock.now()) - self.settings.start).total_seconds()

    def fleet_time(self) -> datetime:
        return self.settings.start + timedelta(seconds=self.fleet.now_s)

    def advance_to(self, target_s: float) -> int:
        """Runs whole ticks up to `target_s` simulated seconds since start; returns how many ran.

        When the simulation has fallen behind the clock (a busy machine), ticks grow up to
        `MAX_CATCH_UP_TICK_S` so it catches up instead of lagging ever more: latencies of requests
        that find a free slot stay exact, only queueing is resolved more coarsely.
        """
        ticks = 0
        started = time.thread_time()
        while not self._stop.is_set():
            with self.fleet.lock:
                t0 = self.fleet.now_s
                lag = target_s - t0
                longest = max(MAX_CATCH_UP_TICK_S, 2 * self.tick_s)  # never below the chosen step
                behind = self.settings.catch_up and lag > 5 * self.tick_s
                tick = max(self.tick_s, min(longest, lag / 5)) if behind else self.tick_s
                if t0 + tick > target_s + 1e-9:
                    break
                self.fleet.tick(t0, t0 + tick, counter_scale=self._counter_scale(tick))
            ticks += 1
        self.sim_cpu_seconds += time.thread_time() - started
        return ticks

    def _counter_scale(self, tick: float) -> float:
        """Real seconds per simulated second of this step, which scales every counter increment.

        Counters then grow by the simulated rate per real second whatever the pace: 1/speed while
        the simulation keeps up with the clock, more while it trails a busy machine (or a clock
        slowed to let it catch up), less while it catches up. So `rate()` in Prometheus reads the
        simulated rate per simulated second in all three cases, not a rate off by the lag.
        """
        now = time.perf_counter()
        if self._last_tick_real is None:
            real = tick / self.clock.speed
        else:
            real = min(now - self._last_tick_real, MAX_REAL_SECONDS_PER_TICK)
        self._last_tick_real = now
        return real / tick

    def _simulate(self) -> None:
        try:
            while not self._stop.is_set():
                if self.advance_to(self.sim_seconds()) == 0:
                    self._stop.wait(0.01)
        except Exception as error:
            self._fail(error)

    def _fail(self, error: Exception) -> None:
        """The simulation died: fail loudly. Exporters close (Prometheus marks every target down instead of
        reading frozen counters as an idle fleet) and the control server answers 500 naming the error."""
        log.exception("world simulation stopped")
        self.failure = f"{type(error).__name__}: {error}"
        for exporter in self.exporters.values():
            exporter.stop()

    # ------------------------------------------------------------------ clusters

    def poll_once(self) -> None:
        """Reads every cluster and the routing once, and releases due readiness delays."""
        self._release_readiness()
        for name, reader in self.readers.items():
            try:
                snapshot = reader.snapshot()
            except ClusterUnavailable as error:
                self.cluster_errors[name] = str(error)
                with self.fleet.lock:
                    self.fleet.mark_unreachable(name)
                continue
            self.cluster_errors.pop(name, None)
            with self.fleet.lock:
                self.fleet.sync(name, snapshot)
        if self.routing_reader is not None:
            try:
                routing = self.routing_reader.routing()
            except Exception as error:  # the hub is down: keep the last weights, as a router would
                self.cluster_errors["hub"] = f"{type(error).__name__}: {error}"
            else:
                self.cluster_errors.pop("hub", None)
                with self.fleet.lock:
                    self.fleet.routing = routing
                    self.fleet.class_routing = dict(getattr(self.routing_reader, "class_routes", {}))

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.poll_interval_s):
            try:
                self.poll_once()
            except Exception:  # a poll must never kill the world; the next one retries
                log.exception("world poll failed")

    # ------------------------------------------------------------------ controls and faults

    def set_speed(self, speed: float) -> None:
        self.clock.set_speed(speed)
        self.tick_s = WorldSettings(speed=speed, tick_sim_seconds=self.settings.tick_sim_seconds).tick()

    def set_load(self, deployment: str, load: LoadSpec) -> None:
        with self.fleet.lock:
            self.fleet.set_load(deployment, load)

    def set_feed_fault(self, zone: str, mode: FeedFaultMode | str, stall_seconds: float = 30.0) -> None:
        """A zone's feed (or "*" for all) answers 500 (`error`), stalls (`stall`), or recovers (`ok`)."""
        if not stall_seconds > 0:
            raise ValueError(f"stall_seconds: must be > 0, got {stall_seconds}")
        self.prices.set_fault(zone, FeedFault(FeedFaultMode(mode), stall_seconds))

    def set_carbon_fault(self, zone: str, mode: FeedFaultMode | str, stall_seconds: float = 30.0) -> None:
        """A zone's carbon feeds (or "*" for all) answer 500 (`error`), stall (`stall`), or recover (`ok`)."""
        if not stall_seconds > 0:
            raise ValueError(f"stall_seconds: must be > 0, got {stall_seconds}")
        self.carbon.set_fault(zone, FeedFault(FeedFaultMode(mode), stall_seconds))

    def set_exporter_down(self, cluster: str, down: bool) -> None:
        exporter = self._exporter(cluster)
        if down:
            exporter.stop()
        else:
            exporter.start()

    def set_apiserver_down(self, cluster: str, down: bool) -> None:
        """Stops (or restarts) a cluster's control plane; replicas keep serving meanwhile."""
        if self.power is None:
            raise RuntimeError("apiserver fault: this world was built without a ClusterPower (kwokctl)")
        if cluster not in self.readers and cluster != "hub":
            raise ValueError(f"cluster: {cluster!r} is not one of {sorted(self.readers)} or 'hub'")
        if down:
            self.power.stop(cluster)
            self.stopped_apiservers.add(cluster)
        else:
            self.power.start(cluster)
            self.stopped_apiservers.discard(cluster)

    def delay_readiness(self, cluster: str, namespace: str, pod: str, sim_seconds: float) -> None:
        """Holds a pod NotReady (and out of service) for `sim_seconds` of simulated time."""
        if cluster not in self.readers:
            raise ValueError(f"cluster: {cluster!r} is not one of {sorted(self.readers)}")
        if not sim_seconds > 0:
            raise ValueError(f"sim_seconds: must be > 0, got {sim_seconds}")
        from .fleet import pod_key

        key = pod_key(cluster, namespace, pod)
        with self.fleet.lock:
            self.fleet.held_not_ready.add(key)
        if self.readiness is not None:
            self.readiness.set_ready(cluster, namespace, pod, False)
        release = self.clock.now() + timedelta(seconds=sim_seconds)
        self._delayed.append(_DelayedReadiness(cluster, namespace, pod, release))
        self.poll_once()

    def _release_readiness(self) -> None:
        from .fleet import pod_key

        now = self.clock.now()
        due = [d for d in self._delayed if d.release_at <= now]
        for delayed in due:
            self._delayed.remove(delayed)
            with self.fleet.lock:
                self.fleet.held_not_ready.discard(pod_key(delayed.cluster, delayed.namespace, delayed.pod))
            if self.readiness is not None:
                try:
                    self.readiness.set_ready(delayed.cluster, delayed.namespace, delayed.pod, True)
                except Exception:  # the pod may be gone; nothing to release then
                    log.warning("could not mark %s/%s Ready again", delayed.namespace, delayed.pod)

    def _exporter(self, cluster: str) -> RegionExporter:
        try:
            return self.exporters[cluster]
        except KeyError:
            raise ValueError(f"cluster: {cluster!r} is not one of {sorted(self.exporters)}") from None

    # ------------------------------------------------------------------ reading

    def endpoints(self) -> dict[str, Any]:
        return {
            "control": self.control.url,
            "prices": self.prices.url,
            "entsoe": f"{self.prices.url}/api",
            "carbon": self.carbon.url,
            "exporters": {name: exporter.url for name, exporter in self.exporters.items()},
        }

    def status(self) -> dict[str, Any]:
        reading = self.clock.read()
        with self.fleet.lock:
            fleet = self.fleet
            engine = fleet.engine
            replicas = [
                {
                    "cluster": r.cluster,
                    "namespace": r.pod.namespace,
                    "pod": r.pod.name,
                    "deployment": r.deployment,
                    "gpuType": engine.params(r.key).performance.model.gpu_type,
                    "gpus": r.pod.gpus,
                    "running": float(engine.running[r.slot]),
                    "waiting": float(engine.waiting[r.slot]),
                    "batch": float(engine.batch[r.slot]),
                    "powerWatts": float(engine.power_w[r.slot]),
                    "abandoned": float(engine.abandoned[r.slot]),
                    "ready": r.ready,
                    "draining": r.drain_until is not None,
                    "profile": engine.params(r.key).performance.source,
                }
                for r in fleet.replicas.values()
            ]
            loads = {
                d: {"trace": s.trace.value, "ratePerSecond": s.rate_per_s}
                for d in sorted(fleet.deployments())
                if (s := fleet.load_of(d)) is not None
            }
            routing = dict(fleet.routing)
            unserved = dict(fleet.unserved_requests)
            unserved_by_cluster = {d: dict(c) for d, c in fleet.unserved_by_cluster.items()}
            dropped = dict(fleet.dropped_requests)
            # Deployments deleted since keep their totals: what their last requests met counts too.
            counted = fleet.deployments() | set(fleet.arrived_requests)
            requests = {d: dataclasses.asdict(fleet.request_totals(d)) for d in sorted(counted)}
            gpus = len(fleet.gpus)
        return {
            **reading.as_json(),
            "fleetTime": self.fleet_time().isoformat().replace("+00:00", "Z"),
            "lagSimSeconds": max(0.0, self.sim_seconds() - self.fleet.now_s),
            "tickSimSeconds": self.tick_s,
            "simCpuSeconds": self.sim_cpu_seconds,
            "endpoints": self.endpoints(),
            "replicas": replicas,
            "gpus": gpus,
            "loads": loads,
            "routing": routing,
            "unservedRequests": unserved,
            "unservedRequestsByCluster": unserved_by_cluster,
            "droppedRequests": dropped,
            "requests": requests,
            "faults": self.faults(),
            "clusterErrors": dict(self.cluster_errors),
        }

    def faults(self) -> dict[str, Any]:
        return {
            "feeds": {
                zone: {"mode": f.mode.value, "stallSeconds": f.stall_seconds} for zone, f in self.prices.faults.items()
            },
            "exportersDown": sorted(name for name, e in self.exporters.items() if not e.up),
            "apiserversDown": sorted(self.stopped_apiservers),
            "readinessDelayed": [
                {"cluster": d.cluster, "namespace": d.namespace, "pod": d.pod, "until": d.release_at.isoformat()}
                for d in self._delayed
            ],
        }
