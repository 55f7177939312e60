"""The fleet of simulated vLLM replicas: continuous batching with chunked prefill, vectorised.

Every live request of every replica sits in one set of numpy arrays, so one time step of the whole
fleet costs a few dozen numpy calls whatever the number of replicas or requests. Per step of
`dt` simulated seconds, each replica:

1. admits waiting requests first-come first-served while it has fewer than `max_num_seqs` running
   and their prompts fit in its KV cache (an arrival that finds room is admitted on arrival;
   one that queued is admitted at the start of the step);
2. prefills admitted prompts at the profile's prefill rate. Prefill shares the GPU with decode
   (vLLM's chunked prefill): decode gets the step's remaining time, and the decode steps that
   carried a prefill chunk (`max_num_batched_tokens` prompt tokens each) are longer;
   a request's first token is out when its prefill ends (TTFT = queueing + prefill);
3. decodes every running request one token per decode step, the step time given by the
   profile at the replica's batch and mean context (inter-token latency);
4. draws the profile's power: prefill power while prefilling, power at the batch while decoding,
   the loaded-idle power otherwise.

Counters and histogram counts are multiplied by `counter_scale` as they accumulate (the world passes
1/speed, see docs/world.md: rates per real second in Prometheus equal rates per simulated second).
Latencies are simulated seconds, unscaled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import vllm_metrics as vm
from .profiles import ReplicaPerformance
from .trace import Arrivals

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CLIENT_TIMEOUT_S = 120.0
"""Simulated seconds a client waits for a request to be admitted before giving up (a gateway's or
SDK's timeout): an overloaded replica drops what it cannot serve, as a real one does."""

WAITING, RUNNING = 0, 1
_GROUP_LIFT = 1e7
"""Larger than any span of simulated seconds in one step, so per-replica prefix maxima do not mix."""
CONTEXT_GRID = np.array([0, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144], dtype=np.float64)
"""Mean contexts at which step times are tabulated; step time is linear in context between them."""


@dataclass(frozen=True)
class ReplicaParams:
    """Engine settings of one replica (vLLM flags) and its performance."""

    performance: ReplicaPerformance
    max_num_seqs: int = 256
    """vLLM's --max-num-seqs: most sequences in a batch (vLLM's default 256 for online serving)."""
    max_num_batched_tokens: int = 2048
    """vLLM's --max-num-batched-tokens: prompt tokens one step may prefill (chunked prefill's budget)."""

    def __post_init__(self) -> None:
        if self.max_num_seqs < 1:
            raise ValueError(f"max_num_seqs: must be >= 1, got {self.max_num_seqs}")
        if self.max_num_batched_tokens < 1:
            raise ValueError(f"max_num_batched_tokens: must be >= 1, got {self.max_num_batched_tokens}")


class _Tables:
    """Step time (s) over (batch 0..max, CONTEXT_GRID) and power (W) over batch 0..max, for one params."""

    def __init__(self, params: ReplicaParams) -> None:
        model = params.performance.model
        batches = np.arange(params.max_num_seqs + 2, dtype=np.float64)
        self.step_s = np.array(
            [[model.step_time_ms(max(b, 1.0), c) / 1000.0 for c in CONTEXT_GRID] for b in batches], dtype=np.float64
        )
        self.power_w = np.array([model.power_watts(b) for b in batches], dtype=np.float64)


@dataclass
class Histogram:
    """Per-slot histogram: counts per bucket (last = +Inf), not cumulative, and sums."""

    family: vm.HistogramFamily
    bounds: FloatArray
    counts: FloatArray
    sums: FloatArray

    @classmethod
    def empty(cls, family: vm.HistogramFamily, slots: int) -> Histogram:
        bounds = np.array(family.buckets, dtype=np.float64)
        return cls(family, bounds, np.zeros((slots, len(bounds) + 1)), np.zeros(slots))

    def observe(self, slots: IntArray, values: FloatArray, weights: FloatArray | float) -> None:
        if len(values) == 0:
            return
        # Prometheus buckets are `le`: a value equal to a bound belongs to that bucket.
        bucket = np.searchsorted(self.bounds, values, side="left")
        width = self.counts.shape[1]
        if isinstance(weights, float):
            flat = _bincount(slots * width + bucket, minlength=self.counts.size) * weights
            summed = _bincount(slots, weights=values, minlength=len(self.sums)) * weights
        else:
            flat = _bincount(slots * width + bucket, weights=weights, minlength=self.counts.size)
            summed = _bincount(slots, weights=values * weights, minlength=len(self.sums))
        self.counts += flat[: self.counts.size].reshape(self.counts.shape)
        self.sums += summed[: len(self.sums)]

    def grow(self, slots: int) -> None:
        extra = slots - len(self.sums)
        self.counts = np.vstack([self.counts, np.zeros((extra, self.counts.shape[1]))])
        self.sums = np.concatenate([self.sums, np.zeros(extra)])

    def reset(self, slot: int) -> None:
        self.counts[slot] = 0.0
        self.sums[slot] = 0.0

    def cumulative(self, slot: int) -> list[tuple[str, float]]:
        """(le, cumulative count) pairs as prometheus_client's HistogramMetricFamily wants them."""
        running = np.cumsum(self.counts[slot])
        labels = [_le(bound) for bound in self.family.buckets] + ["+Inf"]
        return list(zip(labels, running.tolist(), strict=True))


def _bincount(x: npt.NDArray[np.integer[Any]], weights: FloatArray | None = None, minlength: int = 0) -> FloatArray:
    """np.bincount as floats (counts or weighted sums), the type every caller here wants."""
    return np.asarray(np.bincount(x, weights=weights, minlength=minlength), dtype=np.float64)


def _le(bound: float) -> str:
    return repr(float(bound))


_SLOT_STATE = (
    "prefill_debt_s", "stall_s", "prompt_tokens", "generation_tokens", "requests_finished", "energy_j",
    "running", "waiting", "kv_usage", "batch", "decode_busy_s", "batch_seconds", "abandoned", "completed",
)  # fmt: skip
"""Per-replica state that starts from zero with each new replica (a new vLLM process)."""
_SLOT_FIELDS = (
    "active", "max_seqs", "kv_capacity", "prefill_tps", "chunk_tokens", "prefill_watts", "idle_watts", "power_w",
    *_SLOT_STATE,
)  # fmt: skip


class FleetEngine:
    """All simulated replicas; replicas are added and removed by key as pods come and go."""

    def __init__(self, *, slots: int = 32, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)
        self._keys: dict[str, int] = {}
        self._params: list[ReplicaParams | None] = [None] * slots
        self._tables_cache: dict[ReplicaParams, _Tables] = {}
        self._tables: list[_Tables | None] = [None] * slots
        self._groups: list[tuple[_Tables, IntArray]] = []
        self._allocate_slot_arrays(slots)
        self._allocate_request_arrays(1024)
        self.histograms = {family.name: Histogram.empty(family, slots) for family in vm.HISTOGRAMS}

    # ------------------------------------------------------------------ replicas

    def _allocate_slot_arrays(self, slots: int) -> None:
        self.active = np.zeros(slots, dtype=bool)
        self.max_seqs = np.ones(slots, dtype=np.int64)
        self.kv_capacity = np.ones(slots)
        self.prefill_tps = np.ones(slots)
        self.chunk_tokens = np.ones(slots)
        self.prefill_watts = np.zeros(slots)
        self.idle_watts = np.zeros(slots)
        self.prefill_debt_s = np.zeros(slots)
        self.stall_s = np.zeros(slots)
        """Prefill time that held up decoding sequences but produced no token yet: it lengthens the
        next inter-token gap those sequences see."""
        # Exported state, per slot.
        self.prompt_tokens = np.zeros(slots)
        self.generation_tokens = np.zeros(slots)
        self.requests_finished = np.zeros(slots)
        self.energy_j = np.zeros(slots)
        """True (unscaled) energy since the replica started, J."""
        self.power_w = np.zeros(slots)
        self.running = np.zeros(slots)
        self.waiting = np.zeros(slots)
        self.kv_usage = np.zeros(slots)
        self.batch = np.zeros(slots)
        """Mean decode batch over the last step."""
        self.decode_busy_s = np.zeros(slots)
        """Simulated seconds spent decoding since the replica started (unscaled)."""
        self.batch_seconds = np.zeros(slots)
        """Integral of the decode batch over decoding time (unscaled): a window's mean batch is
        its increase divided by decode_busy_s's."""
        self.abandoned = np.zeros(slots)
        """Requests whose client gave up waiting (CLIENT_TIMEOUT_S) before they were admitted (unscaled)."""
        self.completed = np.zeros(slots)
        """Requests finished (unscaled, unlike the exported `requests_finished`): what request accounting counts."""

    def _grow_slots(self) -> None:
        old = len(self.active)
        new = old * 2
        for name in _SLOT_FIELDS:
            array = getattr(self, name)
            grown = np.zeros(new, dtype=array.dtype)
            grown[:old] = array
            setattr(self, name, grown)
        self._params.extend([None] * (new - old))
        self._tables.extend([None] * (new - old))
        for histogram in self.histograms.values():
            histogram.grow(new)

    def add_replica(self, key: str, params: ReplicaParams) -> int:
        """Starts a replica (a fresh vLLM process: counters from 0); returns its slot."""
        if key in self._keys:
            raise ValueError(f"replica {key!r} already exists")
        free = np.flatnonzero(~self.active)
        if len(free) == 0:
            self._grow_slots()
            free = np.flatnonzero(~self.active)
        slot = int(free[0])
        self._keys[key] = slot
        self._params[slot] = params
        if params not in self._tables_cache:
            self._tables_cache[params] = _Tables(params)
        self._tables[slot] = self._tables_cache[params]
        perf = params.performance
        self.active[slot] = True
        self.max_seqs[slot] = params.max_num_seqs
        self.kv_capacity[slot] = perf.kv_capacity_tokens
        self.prefill_tps[slot] = perf.model.prefill_tokens_per_s
        self.chunk_tokens[slot] = params.max_num_batched_tokens
        self.prefill_watts[slot] = perf.prefill_power_watts
        self.idle_watts[slot] = perf.model.idle_power_watts
        for name in _SLOT_STATE:
            getattr(self, name)[slot] = 0.0
        self.power_w[slot] = perf.model.idle_power_watts
        for histogram in self.histograms.values():
            histogram.reset(slot)
        self._regroup()
        return slot

    def remove_replica(self, key: str) -> int:
        """Stops a replica; returns how many queued and running requests were lost with it (the caller
        counts them: a stopped process fails its clients' requests)."""
        slot = self._keys.pop(key)
        self.active[slot] = False
        self._params[slot] = None
        self._tables[slot] = None
        self._regroup()
        keep = self.r_slot[: self._n] != slot
        self._compact(keep)
        return len(keep) - int(keep.sum())

    def live_on(self, slot: int) -> int:
        """Requests queued or running on `slot`."""
        return int(np.count_nonzero(self.r_slot[: self._n] == slot))

    def mean_batch(self, slots: IntArray, since: tuple[FloatArray, FloatArray]) -> float:
        """Mean decode batch of `slots` since a `batch_marks()` reading, weighted by decoding time."""
        busy0, batch0 = since
        busy = float((self.decode_busy_s[slots] - busy0).sum())
        return float((self.batch_seconds[slots] - batch0).sum()) / busy if busy > 0 else 0.0

    def batch_marks(self, slots: IntArray) -> tuple[FloatArray, FloatArray]:
        return self.decode_busy_s[slots].copy(), self.batch_seconds[slots].copy()

    def slot_of(self, key: str) -> int:
        return self._keys[key]

    def keys(self) -> list[str]:
        return list(self._keys)

    def params(self, key: str) -> ReplicaParams:
        params = self._params[self._keys[key]]
        assert params is not None
        return params

    # ------------------------------------------------------------------ requests

    def _allocate_request_arrays(self, capacity: int) -> None:
        self._n = 0
        self.r_slot = np.zeros(capacity, dtype=np.int64)
        self.r_state = np.zeros(capacity, dtype=np.int8)
        self.r_arrival = np.zeros(capacity)
        self.r_admit = np.zeros(capacity)
        self.r_first = np.zeros(capacity)
        self.r_prompt = np.zeros(capacity)
        self.r_output = np.zeros(capacity)
        self.r_generated = np.zeros(capacity)

    _REQUEST_FIELDS = ("r_slot", "r_state", "r_arrival", "r_admit", "r_first", "r_prompt", "r_output", "r_generated")

    def _ensure_capacity(self, needed: int) -> None:
        capacity = len(self.r_slot)
        if needed <= capacity:
            return
        new = max(needed, capacity * 2)
        for name in self._REQUEST_FIELDS:
            array = getattr(self, name)
            grown = np.zeros(new, dtype=array.dtype)
            grown[: self._n] = array[: self._n]
            setattr(self, name, grown)

    def _abandon(self, t0: float) -> None:
        """Clients give up on requests still waiting CLIENT_TIMEOUT_S after they arrived (vLLM then
        aborts them); an overloaded replica's queue stays bounded instead of growing without end."""
        n = self._n
        expired = (self.r_state[:n] == WAITING) & (self.r_arrival[:n] < t0 - CLIENT_TIMEOUT_S)
        if expired.any():
            self.abandoned += _bincount(self.r_slot[:n][expired], minlength=len(self.active))
            self._compact(~expired)

    def _compact(self, keep: npt.NDArray[np.bool_]) -> None:
        kept = int(keep.sum())
        for name in self._REQUEST_FIELDS:
            array = getattr(self, name)
            array[:kept] = array[: self._n][keep]
        self._n = kept

    @property
    def live_requests(self) -> int:
        return self._n

    def enqueue(self, slots: IntArray, arrivals: Arrivals) -> None:
        """Queues `arrivals` on the replicas `slots` (same length, one slot per request)."""
        count = len(arrivals)
        if count == 0:
            return
        if len(slots) != count:
            raise ValueError(f"enqueue: {len(slots)} slots for {count} requests")
        if not bool(np.all(self.active[slots])):
            raise ValueError("enqueue: a request was routed to a slot with no replica")
        self._ensure_capacity(self._n + count)
        window = slice(self._n, self._n + count)
        self.r_slot[window] = slots
        self.r_state[window] = WAITING
        self.r_arrival[window] = arrivals.times_s
        self.r_admit[window] = np.nan
        self.r_first[window] = np.nan
        self.r_prompt[window] = arrivals.prompt_tokens
        self.r_output[window] = arrivals.output_tokens
        self.r_generated[window] = 0.0
        self._n += count

    def route(self, slots: IntArray, weights: FloatArray, arrivals: Arrivals) -> None:
        """Sends each arrival to one of `slots`, drawn with probabilities proportional to `weights`."""
        if len(arrivals) == 0:
            return
        if len(slots) == 0:
            raise ValueError("route: no replica with a positive weight")
        self.enqueue(slots[self.choose(weights, len(arrivals))], arrivals)

    def choose(self, weights: FloatArray, count: int) -> IntArray:
        """`count` indices into `weights`, drawn with probabilities proportional to them (the routing draw)."""
        total = float(weights.sum())
        if len(weights) == 0 or not total > 0:
            raise ValueError("route: no replica with a positive weight")
        return np.asarray(self._rng.choice(len(weights), size=count, p=weights / total), dtype=np.int64)

    # ------------------------------------------------------------------ time step

    def advance(self, t0: float, t1: float, *, counter_scale: float = 1.0) -> None:
        """Simulates [t0, t1) for every replica; arrivals at or after t1 stay queued, untouched."""
        dt = t1 - t0
        if dt <= 0:
            raise ValueError(f"advance: t1 must be after t0, got [{t0}, {t1})")
        slots = len(self.active)
        self._abandon(t0)
        n = self._n
        slot = self.r_slot[:n]
        state = self.r_state[:n]
        prompt = self.r_prompt[:n]
        generated = self.r_generated[:n]

        # 1. Admission, first come first served within each replica.
        running = state == RUNNING
        run_count = _bincount(slot[running], minlength=slots)
        context_sum = _bincount(slot[running], weights=prompt[running] + generated[running], minlength=slots)
        waiting_idx = np.flatnonzero((state == WAITING) & (self.r_arrival[:n] < t1))
        prefill_work_s = np.zeros(slots)
        chunk_steps = np.zeros(slots)
        backlog_end = t0 + self.prefill_debt_s
        if len(waiting_idx):
            order = np.lexsort((self.r_arrival[waiting_idx], slot[waiting_idx]))
            queued = waiting_idx[order]
            queued_slot = slot[queued]
            group_start = np.searchsorted(queued_slot, queued_slot, side="left")
            rank = np.arange(len(queued)) - group_start
            prompt_cum = np.cumsum(prompt[queued])
            prompt_in_group = prompt_cum - (prompt_cum[group_start] - prompt[queued[group_start]])
            fits = context_sum[queued_slot] + prompt_in_group <= self.kv_capacity[queued_slot]
            # A replica with nothing running always takes its first request, however long.
            fits |= (rank == 0) & (run_count[queued_slot] == 0)
            admit = (rank < self.max_seqs[queued_slot] - run_count[queued_slot]) & fits
            admitted = queued[admit]
            if len(admitted):
                admitted_slot = slot[admitted]
                admit_time = np.maximum(self.r_arrival[admitted], t0)
                work = prompt[admitted] / self.prefill_tps[admitted_slot]
                work_cum = np.cumsum(work)
                start = np.searchsorted(admitted_slot, admitted_slot, side="left")
                work_in_group = work_cum - (work_cum[start] - work[start])
                # Prefill is one FIFO queue per replica: prompt k ends at W_k + max(backlog start,
                # max_{j<=k} (admit_j - W_{j-1})), W the cumulative prefill work. The prefix max runs
                # over all replicas at once, each group lifted above the previous ones.
                group = np.cumsum(start == np.arange(len(start))) * _GROUP_LIFT
                lifted = (admit_time - t0) - (work_in_group - work) + group
                latest_start = np.maximum.accumulate(lifted) - group
                first = t0 + work_in_group + np.maximum(latest_start, self.prefill_debt_s[admitted_slot])
                # vLLM prefills each prompt in steps of at most max_num_batched_tokens; prompts
                # arriving apart do not share a step, so each takes ceil(prompt / budget) steps.
                chunk_steps = _bincount(
                    admitted_slot, weights=np.ceil(prompt[admitted] / self.chunk_tokens[admitted_slot]), minlength=slots
                )
                state[admitted] = RUNNING
                self.r_admit[admitted] = admit_time
                self.r_first[admitted] = first
                prefill_work_s = _bincount(admitted_slot, weights=work, minlength=slots)
                np.maximum.at(backlog_end, admitted_slot, first)
        prefill_total = self.prefill_debt_s + prefill_work_s
        new_debt = np.clip(backlog_end - t1, 0.0, None)
        prefill_in_step = np.clip(prefill_total - new_debt, 0.0, dt)
        self.prefill_debt_s = np.minimum(new_debt, prefill_total)
        decode_time = dt - prefill_in_step

        # 2. Decode.
        first_token = self.r_first[:n]
        decoding = (state == RUNNING) & (first_token < t1)
        dec = np.flatnonzero(decoding)
        dec_slot = slot[dec]
        active_start = np.maximum(first_token[dec], t0)
        span = t1 - active_start
        context = prompt[dec] + generated[dec]
        left = self.r_output[:n][dec] - generated[dec]
        # The batch is the time-average of the sequences decoding; a sequence that finishes during
        # the step leaves it early. Its finish depends on the step time, which depends on the batch:
        # two passes (all staying, then each leaving at the first pass's pace) settle it.
        held = span
        for _ in range(2):
            batch = _bincount(dec_slot, weights=held / dt, minlength=slots)
            mean_context = _bincount(dec_slot, weights=context * held / dt, minlength=slots) / np.maximum(batch, 1e-9)
            step_s = self._lookup_step(batch, mean_context)
            steps_per_s = np.where(decode_time > 0, decode_time / (step_s * dt), 0.0)
            rate = steps_per_s[dec_slot]
            held = np.minimum(span, left / np.maximum(rate, 1e-12))
        new_first = (first_token[dec] >= t0) | (generated[dec] == 0)
        before = generated[dec]
        output = self.r_output[:n][dec]
        after = np.minimum(output, before + new_first + rate * span)
        finished = after >= output - 1e-9
        remaining_after_first = output - before - new_first
        with np.errstate(divide="ignore", invalid="ignore"):
            finish_time = np.where(
                remaining_after_first <= 0, active_start, active_start + remaining_after_first / np.maximum(rate, 1e-12)
            )
        finish_time = np.minimum(finish_time, t1)
        generated[dec] = after
        tokens = after - before
        busy_span = np.where(finished, finish_time - active_start, span)
        longest_span = np.zeros(slots)
        np.maximum.at(longest_span, dec_slot, busy_span)
        busy_decode = np.minimum(longest_span, decode_time)

        # 3. Observations.
        scale = counter_scale
        h = self.histograms
        first_idx = dec[new_first]
        first_slot = slot[first_idx]
        h[vm.TTFT.name].observe(first_slot, first_token[first_idx] - self.r_arrival[:n][first_idx], scale)
        self.prompt_tokens += _bincount(first_slot, weights=prompt[first_idx], minlength=slots) * scale
        token_count = _bincount(dec_slot, weights=tokens, minlength=slots)
        self.generation_tokens += token_count * scale
        # A request whose first token came this step was not decoding while its own prompt
        # prefilled, so only requests decoding since before t0 see the chunked-prefill steps.
        joined = _bincount(first_slot, weights=tokens[new_first], minlength=slots)
        old_tokens = token_count - joined
        waited_on = _bincount(dec_slot[~new_first], minlength=slots) > 0
        stall = self.stall_s + prefill_in_step
        self._observe_itl(
            old_tokens,
            joined - _bincount(first_slot, minlength=slots),
            step_s,
            stall,
            chunk_steps,
            decode_time,
            scale,
        )
        # Prefill that kept waiting sequences from any token lengthens their next gap; with nobody
        # waiting, it delayed nobody.
        self.stall_s = np.where(waited_on & (old_tokens < 1e-9), stall, 0.0)
        done = dec[finished]
        if len(done):
            done_slot = slot[done]
            arrival = self.r_arrival[:n][done]
            admit_time = self.r_admit[:n][done]
            first_time = first_token[done]
            end = finish_time[finished]
            out = self.r_output[:n][done]
            self.requests_finished += _bincount(done_slot, minlength=slots) * scale
            self.completed += _bincount(done_slot, minlength=slots)
            h[vm.E2E.name].observe(done_slot, end - arrival, scale)
            h[vm.QUEUE.name].observe(done_slot, admit_time - arrival, scale)
            h[vm.PREFILL.name].observe(done_slot, first_time - admit_time, scale)
            h[vm.DECODE.name].observe(done_slot, end - first_time, scale)
            h[vm.INFERENCE.name].observe(done_slot, end - admit_time, scale)
            h[vm.PROMPT_TOKENS_HIST.name].observe(done_slot, prompt[done], scale)
            h[vm.GENERATION_TOKENS_HIST.name].observe(done_slot, out, scale)
            multi = out > 1
            h[vm.TPOT_PER_REQUEST.name].observe(
                done_slot[multi], (end[multi] - first_time[multi]) / (out[multi] - 1), scale
            )

        # 4. Power and energy.
        # Mean number of sequences decoding together while the replica decodes.
        busy_batch = _bincount(dec_slot, weights=busy_span, minlength=slots) / np.maximum(longest_span, 1e-12)
        decode_watts = self._lookup_power(np.where(busy_decode > 0, busy_batch, 0.0))
        idle_time = np.clip(dt - prefill_in_step - busy_decode, 0.0, None)
        energy = prefill_in_step * self.prefill_watts + busy_decode * decode_watts + idle_time * self.idle_watts
        energy = np.where(self.active, energy, 0.0)
        self.energy_j += energy
        self.power_w = energy / dt
        self.batch = np.where(busy_decode > 0, busy_batch, 0.0)
        self.decode_busy_s += busy_decode
        self.batch_seconds += self.batch * busy_decode

        # 5. Drop finished requests; gauges at t1.
        keep = np.ones(n, dtype=bool)
        keep[done] = False
        self._compact(keep)
        m = self._n
        slot = self.r_slot[:m]
        running = self.r_state[:m] == RUNNING
        self.running = _bincount(slot[running], minlength=slots)
        self.waiting = _bincount(slot[~running & (self.r_arrival[:m] < t1)], minlength=slots)
        context_now = _bincount(
            slot[running], weights=self.r_prompt[:m][running] + self.r_generated[:m][running], minlength=slots
        )
        self.kv_usage = np.minimum(1.0, context_now / self.kv_capacity)

    def _observe_itl(
        self,
        decoded: FloatArray,
        joined: FloatArray,
        step_s: FloatArray,
        prefill_s: FloatArray,
        prefill_steps: FloatArray,
        decode_s: FloatArray,
        scale: float,
    ) -> None:
        """Inter-token latencies: plain decode steps, and the longer steps that carried a prefill chunk.

        `decoded`: tokens (after the first) of requests decoding since before this step, which share
        their steps with prefill chunks; `joined`: tokens after the first of requests that started now.
        """
        itl = self.histograms[vm.ITL.name]
        joined = np.maximum(joined, 0.0)
        newcomers = np.flatnonzero(joined > 0)
        itl.observe(newcomers, step_s[newcomers], joined[newcomers] * scale)
        decoded = np.maximum(decoded, 0.0)
        has = np.flatnonzero(decoded > 0)
        if len(has) == 0:
            return
        # Prefill carried over from the last step still needs at least one step per chunk budget.
        budget_steps = np.ceil(prefill_s[has] * self.prefill_tps[has] / self.chunk_tokens[has])
        steps_total = np.maximum(decode_s[has] / step_s[has], 1e-12)
        # More prompts than decode steps: their chunks share steps (vLLM packs them up to the budget).
        chunked_steps = np.minimum(np.maximum(prefill_steps[has], budget_steps), steps_total)
        chunk_share = chunked_steps / steps_total
        chunk_s = np.where(chunked_steps > 0, prefill_s[has] / np.maximum(chunked_steps, 1e-12), 0.0)
        plain_tokens = decoded[has] * (1.0 - chunk_share)
        chunk_tokens = decoded[has] * chunk_share
        itl.observe(has, step_s[has], plain_tokens * scale)
        mixed = chunk_tokens > 0
        itl.observe(has[mixed], step_s[has][mixed] + chunk_s[mixed], chunk_tokens[mixed] * scale)

    def _lookup_step(self, batch: FloatArray, context: FloatArray) -> FloatArray:
        out = np.ones(len(batch))
        for tables, members in self._groups:
            b = np.clip(batch[members], 0.0, len(tables.power_w) - 1.0)
            lo = np.minimum(np.floor(b).astype(np.int64), len(tables.power_w) - 2)
            frac_b = b - lo
            c = np.clip(context[members], 0.0, CONTEXT_GRID[-1])
            ci = np.clip(np.searchsorted(CONTEXT_GRID, c, side="right") - 1, 0, len(CONTEXT_GRID) - 2)
            frac_c = (c - CONTEXT_GRID[ci]) / (CONTEXT_GRID[ci + 1] - CONTEXT_GRID[ci])
            grid = tables.step_s
            low_b = grid[lo, ci] * (1 - frac_c) + grid[lo, ci + 1] * frac_c
            high_b = grid[lo + 1, ci] * (1 - frac_c) + grid[lo + 1, ci + 1] * frac_c
            out[members] = low_b * (1 - frac_b) + high_b * frac_b
        return out

    def _lookup_power(self, batch: FloatArray) -> FloatArray:
        out = np.zeros(len(batch))
        for tables, members in self._groups:
            out[members] = np.interp(batch[members], np.arange(len(tables.power_w)), tables.power_w)
        return out

    def _regroup(self) -> None:
        """Slots sharing one table, so lookups run once per distinct replica kind."""
        groups: dict[int, tuple[_Tables, list[int]]] = {}
        for slot in np.flatnonzero(self.active).tolist():
            tables = self._tables[slot]
            assert tables is not None
            groups.setdefault(id(tables), (tables, []))[1].append(slot)
        self._groups = [(tables, np.array(members, dtype=np.int64)) for tables, members in groups.values()]
