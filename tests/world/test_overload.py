"""An overloaded replica: clients give up on requests not admitted within CLIENT_TIMEOUT_S, so the
queue (and the simulation's work per step) stays bounded, and the world reports what was dropped."""

from __future__ import annotations

import numpy as np
from e2e.world.engine import CLIENT_TIMEOUT_S, FleetEngine, ReplicaParams
from e2e.world.profiles import H100, ProfileCatalog
from e2e.world.trace import TraceLoad, load_trace


def test_requests_waiting_longer_than_the_client_timeout_are_abandoned() -> None:
    engine = FleetEngine(seed=5)
    slots = np.array([engine.add_replica("r", ReplicaParams(ProfileCatalog().performance(H100, 1), max_num_seqs=2))])
    rate = 6.0  # several times what two sequences at a time can serve
    load = TraceLoad(load_trace("conv"), rate_per_s=rate)
    t, dt, arrived = 0.0, 1.0, 0
    while t < 1800.0:
        arrivals = load.arrivals(t, t + dt)
        arrived += len(arrivals)
        engine.route(slots, np.ones(1), arrivals)
        engine.advance(t, t + dt)
        t += dt
    assert engine.waiting[0] <= rate * (CLIENT_TIMEOUT_S + 2 * dt) * 1.5, "the queue is bounded by the timeout"
    assert engine.live_requests < rate * CLIENT_TIMEOUT_S * 2
    served, dropped = engine.requests_finished[0], engine.abandoned[0]
    assert dropped > 0.5 * arrived
    assert served + dropped + engine.live_requests == arrived, "every arrival is served, dropped or still queued"
