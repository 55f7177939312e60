"""The request-level replica engine simulate judges the SLO with: every request of a replica, vectorised.

A week of a fleet is hundreds of millions of requests and, stepped token by token as
`gridshift.simulation.replica.simulate_replica` does, billions of engine steps: far beyond a 2-core
budget in Python. This engine keeps what decides p95 TTFT and TPOT request by request and drops the
per-step bookkeeping, so that it runs as a handful of numpy passes over the requests:

- **Prefill queue (TTFT).** vLLM's chunked prefill gives waiting prompts, in arrival order, up to C
  prompt tokens per engine step; a step that carries a chunk lasts s + chunk/R_pf (s: the decode step
  for the running batch, R_pf: prefill tokens/s). Chunks pack across queued prompts, so the prefill
  channel holds a prompt of P tokens P*(s/C + 1/R_pf) seconds: a FIFO single server. Waiting times
  follow Lindley's recursion, solved in closed form with a running maximum:
  finish_i = cumS_i + max_{k<=i}(R_k - cumS_{k-1}), R_k the arrival plus half a step when the replica
  decodes (the step in flight). A request's first token comes at the end of the step holding its
  prompt's last token: the tokens moved since the channel's busy period began, rounded up to whole
  chunks (that step carries a full chunk when the next prompt is already queued).
- **Decode (TPOT).** A request decodes one token per step from its first token on, for O_i - 1 more
  tokens. The decode step s(t) = a + b*KV(t) + c*B(t) depends on the running batch B(t) and its KV
  positions KV(t), counted from every request's decode interval on a 0.25 s grid and averaged over
  the request's own decode interval. A step also carries a prefill chunk while the prefill channel
  is busy; the share of a request's inter-token intervals that do is the channel's busy share over
  its decode interval, counted in steps. Its intervals are s_i (decode only), s_i + C/R_pf (a full
  chunk) and s_i + r/R_pf (the last chunk of a busy period, r its tokens); p95 TPOT is over intervals,
  as vLLM's inter-token-latency histogram counts them.
- The step times and the decode intervals depend on each other: fixed-point passes until no request's
  step moves by _SETTLED (at most _FIXED_POINT_PASSES; an overloaded replica does not settle: its
  queue grows without bound, as it should).

Left out: admission waiting for a free batch slot at `max_batch` (a replica there is far beyond its
TPOT objective on every shipped profile), and preemption. `tests/simulation/test_requests.py` checks
it against the stepped engine.

Arrivals (`thinned_arrivals`): a deployment's requests are several copies of a trace at spread offsets
(independent tenants), thinned to the day's load; replicas are fed round-robin, so one replica sees
every R-th request of each tenant (systematic sampling with a random phase per minute): the trace's
own second-level timing and request sizes, at 1/R of the deployment's rate. Replicas of a deployment
are alike, so one such replica per deployment is simulated: its per-minute p95 is an unbiased estimate
of the deployment's.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridshift.arrays import FloatArray, IntArray
from gridshift.planner.capacity import DISPERSION_WINDOWS_S, PROMPT_QUANTILE_POINTS, TrafficShape
from gridshift.planner.profiles import PerformanceModel
from gridshift.simulation.data import TraceProfile

_FIXED_POINT_PASSES = 6
"""At most this many passes; they stop once no request's step time moves by more than _SETTLED."""
_SETTLED = 0.01


@dataclass(frozen=True)
class RequestStream:
    """Requests of one replica in arrival order."""

    arrival_s: FloatArray
    prompt_tokens: IntArray
    output_tokens: IntArray

    def __len__(self) -> int:
        return len(self.arrival_s)


@dataclass(frozen=True)
class ServedRequests:
    """What each request of a stream saw."""

    ttft_s: FloatArray
    decode_step_s: FloatArray
    """Inter-token time of the request's decode steps that carry no prefill chunk."""
    chunk_share: FloatArray
    """Share of the request's inter-token intervals that also carry a full prefill chunk (chunk_stall_s more)."""
    chunk_stall_s: float
    intervals: FloatArray
    """Inter-token intervals of the request (output tokens - 1)."""
    mean_batch: float
    partial_share: FloatArray
    """Share of the request's inter-token intervals that carry the last, partial chunk of a prefill busy
    period: they last chunk_stall_s x a fraction of partial_fractions more."""
    partial_fractions: FloatArray
    """Sorted: the last chunk of each busy period of the stream's prefill channel as a fraction of a full one."""

    def tpot_over_share(self, limit_s: float) -> FloatArray:
        """Share of each request's intervals above `limit_s`."""
        plain = 1.0 - self.chunk_share - self.partial_share
        stall = max(self.chunk_stall_s, 1e-300)
        count = len(self.partial_fractions)
        below = np.searchsorted(self.partial_fractions, (limit_s - self.decode_step_s) / stall, side="right")
        partial_over = 1.0 - below / count if count else np.zeros_like(self.decode_step_s)
        share: FloatArray = (
            plain * (self.decode_step_s > limit_s)
            + self.chunk_share * (self.decode_step_s + self.chunk_stall_s > limit_s)
            + self.partial_share * partial_over
        )
        return share

    def ttft_quantile(self, quantile: float) -> float:
        return float(np.quantile(self.ttft_s, quantile)) if len(self.ttft_s) else float("nan")

    def tpot_quantile(self, quantile: float) -> float:
        """Quantile over inter-token intervals: the shortest limit that at most 1 - quantile of them exceed."""
        total = float(self.intervals.sum())
        if total <= 0:
            return float("nan")
        low = float(self.decode_step_s.min()) if len(self.decode_step_s) else 0.0
        high = float(self.decode_step_s.max()) + self.chunk_stall_s
        for _ in range(40):
            middle = (low + high) / 2.0
            if float((self.intervals * self.tpot_over_share(middle)).sum()) <= (1.0 - quantile) * total:
                high = middle
            else:
                low = middle
        return high

    def tpot_over(self, limit_s: float) -> FloatArray:
        """Intervals of each request above `limit_s`."""
        over: FloatArray = self.intervals * self.tpot_over_share(limit_s)
        return over


GRID_SECONDS = 0.25
"""Resolution of the batch, KV and prefill-busy time series (a decode step is 7-40 ms, a decode 0.2-10 s)."""


class _Grid:
    """Time series on a fixed grid, and times located on it once so that many series are read cheaply."""

    def __init__(self, horizon_s: float) -> None:
        self.size = int(horizon_s / GRID_SECONDS) + 3

    def locate(self, times: FloatArray) -> tuple[IntArray, FloatArray]:
        position = np.minimum(times * (1.0 / GRID_SECONDS), self.size - 2.0)
        whole = position.astype(np.int64)
        return whole, position - whole

    def cell(self, times: FloatArray) -> IntArray:
        """The cell of each time (`locate`'s first part alone)."""
        whole: IntArray = np.minimum(times * (1.0 / GRID_SECONDS), self.size - 2.0).astype(np.int64)
        return whole

    def level(self, begin: IntArray, end: IntArray, weights: FloatArray | None) -> FloatArray:
        """Sum of `weights` of the intervals open in each grid cell (intervals given by their cells)."""
        opened = np.bincount(begin, weights=weights, minlength=self.size)
        closed = np.bincount(end, weights=weights, minlength=self.size)
        result: FloatArray = np.cumsum(opened - closed, dtype=np.float64)
        return result

    @staticmethod
    def mean(
        series: FloatArray, begin: tuple[IntArray, FloatArray], end: tuple[IntArray, FloatArray], span: FloatArray
    ) -> FloatArray:
        """Mean of `series` over each [begin, end] (its value at `begin` for intervals within one cell).

        The running integral at a time inside cell w is running[w] + series[w] x (time into the cell): two
        gathers per end, and the value at `begin` is one of them."""
        running = np.empty(len(series) + 1)
        running[0] = 0.0
        np.cumsum(series, out=running[1:])
        running[1:] *= GRID_SECONDS
        first_value = series[begin[0]]
        begin_sum = running[begin[0]] + first_value * (begin[1] * GRID_SECONDS)
        end_sum = running[end[0]] + series[end[0]] * (end[1] * GRID_SECONDS)
        long = span > GRID_SECONDS
        result: FloatArray = np.where(long, (end_sum - begin_sum) / np.where(long, span, 1.0), first_value)
        return result


_Passes = tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]


def _prefill_channel(
    arrival: FloatArray,
    prompt: FloatArray,
    cum_prompt: FloatArray,
    cum_before: FloatArray,
    prefill_step: FloatArray,
    decoding: npt.NDArray[np.bool_],
    chunk: float,
    per_token_s: float,
    stall_s: float,
) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_], FloatArray, FloatArray]:
    """One pass of `_passes` over the prefill channel: each prompt's start and finish in it, its first token's
    time, whether the next prompt is queued behind it, and the chunks moved in its busy period (exact, whole)."""
    # Fluid prefill channel: chunks pack across queued prompts, so a prompt holds it for P/C steps.
    service = prompt * (prefill_step / chunk + per_token_s)
    # A prompt arriving while the replica decodes waits for the step in flight (half of one on average).
    ready = arrival + np.where(decoding, 0.5 * prefill_step, 0.0)
    total = np.cumsum(service)
    before = total - service
    finish = total + np.maximum.accumulate(ready - before)
    start = finish - service
    # The first token comes at the end of the step holding the prompt's last token: round the prompt
    # tokens moved since the channel's busy period began up to whole chunks.
    opens = np.concatenate([[True], ready[1:] >= finish[:-1]])
    moved = cum_prompt - np.maximum.accumulate(np.where(opens, cum_before, 0.0))
    moved_chunks = moved / chunk
    whole_chunks = np.ceil(moved_chunks - 1e-9)
    left = whole_chunks - moved_chunks
    # The next prompt is queued exactly where it does not open a busy period.
    queued_next = np.concatenate([~opens[1:], [False]])
    rounding = left * (prefill_step + np.where(queued_next, stall_s, 0.0))
    first = finish + rounding
    return start, finish, first, queued_next, moved_chunks, whole_chunks


def _passes(
    arrival: FloatArray,
    prompt: FloatArray,
    intervals: FloatArray,
    context: FloatArray,
    cum_prompt: FloatArray,
    cum_before: FloatArray,
    arrival_cell: IntArray,
    minute: IntArray,
    prompt_per_minute: FloatArray,
    prefill_step: FloatArray,
    decoding: npt.NDArray[np.bool_],
    chunk: float,
    per_token_s: float,
    stall_s: float,
    base_s: float,
    per_kv_s: float,
    per_sequence_s: float,
    batch_cap: float,
) -> _Passes:
    """The fixed-point passes in numpy: the reference `_passes_loop` (compiled) reproduces bit for bit.

    Returns, for every request: its first token's time, decode step, share of intervals carrying a chunk, the
    partial chunks' part of that share, mean batch over its decode, and for the prefill channel the tokens
    left over whole chunks where it stands and whether a busy period closes with it."""
    count = len(arrival)
    minutes = len(prompt_per_minute)
    decode_step = prefill_step.copy()
    share = np.zeros(count)
    partial_part = np.zeros(count)
    closes = np.ones(count, dtype=bool)
    left_over = np.zeros(count)
    first = arrival
    batch = np.zeros(count)
    for _ in range(_FIXED_POINT_PASSES):
        previous = decode_step
        start, finish, first, queued_next, moved_chunks, whole_chunks = _prefill_channel(
            arrival, prompt, cum_prompt, cum_before, prefill_step, decoding, chunk, per_token_s, stall_s
        )
        last = first + intervals * (decode_step + share * stall_s)
        grid = _Grid(float(last.max()))
        at_first, at_last = grid.locate(first), grid.locate(last)
        # The channel holds a busy period's steps whole: its last prompt holds it until its first token, the end
        # of the step carrying the period's last (partial) chunk, not until its fluid finish.
        at_start, at_finish = grid.cell(start), grid.cell(np.where(queued_next, finish, first))
        span = last - first
        batch_series = grid.level(at_first[0], at_last[0], None)
        kv_series = grid.level(at_first[0], at_last[0], context)
        busy_series = np.minimum(grid.level(at_start, at_finish, None), 1.0)
        prefill_step = (
            base_s + per_kv_s * kv_series[at_start] + per_sequence_s * np.minimum(batch_series[at_start], batch_cap)
        )
        decoding = batch_series[np.minimum(arrival_cell, grid.size - 2)] > 0.5
        batch = grid.mean(batch_series, at_first, at_last, span)
        kv = grid.mean(kv_series, at_first, at_last, span)
        decode_step = base_s + per_kv_s * kv + per_sequence_s * np.minimum(batch, batch_cap)
        busy = np.clip(grid.mean(busy_series, at_first, at_last, span), 0.0, 1.0)
        # A busy period of the channel moves its tokens in whole chunks but for its last step.
        closes = ~queued_next
        left_over = moved_chunks - np.floor(moved_chunks + 1e-9)
        partial_steps = np.bincount(minute, weights=(closes & (left_over > 1e-9)).astype(np.float64), minlength=minutes)
        chunk_steps = np.bincount(minute, weights=np.where(closes, whole_chunks, 0.0), minlength=minutes)
        partial_part = (partial_steps / np.maximum(chunk_steps, 1.0))[minute]
        mean_chunk_tokens = (prompt_per_minute / np.maximum(chunk_steps, 1.0))[minute]
        with_chunk = busy / (decode_step + np.minimum(mean_chunk_tokens, chunk) * per_token_s)
        without = (1.0 - busy) / decode_step
        share = with_chunk / np.maximum(with_chunk + without, 1e-300)
        if np.max(np.abs(decode_step - previous) / previous) < _SETTLED:
            break
    return first, decode_step, share, partial_part, batch, left_over, closes


def _channel_sweep(
    arrival: FloatArray,
    prompt: FloatArray,
    cum_prompt: FloatArray,
    cum_before: FloatArray,
    prefill_step: FloatArray,
    decoding: npt.NDArray[np.bool_],
    chunk: float,
    per_token_s: float,
    start: FloatArray,
    finish: FloatArray,
    opens: npt.NDArray[np.bool_],
    moved_chunks: FloatArray,
) -> None:  # pragma: no cover - run compiled within `_passes_loop`
    """`_passes_loop`'s prefill channel (Lindley's recursion) and the busy periods' chunks, in one sweep: fills
    each request's start, finish, whether it opens a busy period, and the chunks moved in that period."""
    count = len(arrival)
    total = 0.0
    peak = 0.0
    busy_start = 0.0
    for i in range(count):
        service = prompt[i] * (prefill_step[i] / chunk + per_token_s)
        ready = arrival[i] + (0.5 * prefill_step[i] if decoding[i] else 0.0)
        total = service if i == 0 else total + service
        gap = ready - (total - service)
        peak = gap if i == 0 or gap > peak else peak
        finish[i] = total + peak
        start[i] = finish[i] - service
        opens[i] = True if i == 0 else ready >= finish[i - 1]
        candidate = cum_before[i] if opens[i] else 0.0
        busy_start = candidate if i == 0 or candidate > busy_start else busy_start
        moved_chunks[i] = (cum_prompt[i] - busy_start) / chunk


def _first_and_last(
    finish: FloatArray,
    opens: npt.NDArray[np.bool_],
    moved_chunks: FloatArray,
    prefill_step: FloatArray,
    decode_step: FloatArray,
    share: FloatArray,
    intervals: FloatArray,
    stall_s: float,
    first: FloatArray,
    last: FloatArray,
) -> float:  # pragma: no cover - run compiled within `_passes_loop`
    """Fills each request's first and last token times in `_passes_loop`; returns the last of them all."""
    count = len(finish)
    horizon = 0.0
    for i in range(count):
        queued_next = i + 1 < count and not opens[i + 1]
        left = np.ceil(moved_chunks[i] - 1e-9) - moved_chunks[i]
        first[i] = finish[i] + left * (prefill_step[i] + (stall_s if queued_next else 0.0))
        last[i] = first[i] + intervals[i] * (decode_step[i] + share[i] * stall_s)
        horizon = last[i] if i == 0 or last[i] > horizon else horizon
    return horizon


def _level_table(
    first: FloatArray,
    last: FloatArray,
    start: FloatArray,
    finish: FloatArray,
    opens: npt.NDArray[np.bool_],
    context: FloatArray,
    changes: FloatArray,
    table: FloatArray,
) -> FloatArray:  # pragma: no cover - run compiled within `_passes_loop`
    """Per cell of `_passes_loop`'s grid: each series and its running integral side by side (columns: batch, KV,
    busy; the running integral at cell c sums the cells before it), so that a request's gathers read one line
    per end. Written into `table` (size + 1 rows), with `changes` (size rows, overwritten) as scratch."""
    count = len(first)
    size = len(changes)
    scale = 1.0 / GRID_SECONDS
    top = size - 2.0
    # Per cell: batch, KV and busy changes (KV's openings and closings apart, summed in numpy's order).
    changes[:, :] = 0.0
    for i in range(count):
        begin = int(min(first[i] * scale, top))
        end = int(min(last[i] * scale, top))
        changes[begin, 0] += 1.0
        changes[end, 0] -= 1.0
        changes[begin, 1] += context[i]
        changes[end, 2] += context[i]
        changes[int(min(start[i] * scale, top)), 3] += 1.0
        busy_end = finish[i] if i + 1 < count and not opens[i + 1] else first[i]
        changes[int(min(busy_end * scale, top)), 3] -= 1.0
    batch_level = 0.0
    kv_level = 0.0
    busy_level = 0.0
    table[0, 1] = 0.0
    table[0, 3] = 0.0
    table[0, 5] = 0.0
    for cell in range(size):
        batch_level += changes[cell, 0]
        kv_step = changes[cell, 1] - changes[cell, 2]
        kv_level = kv_step if cell == 0 else kv_level + kv_step
        busy_level += changes[cell, 3]
        table[cell, 0] = batch_level
        table[cell, 2] = kv_level
        table[cell, 4] = min(busy_level, 1.0)
        table[cell + 1, 1] = table[cell, 0] if cell == 0 else table[cell, 1] + table[cell, 0]
        table[cell + 1, 3] = table[cell, 2] if cell == 0 else table[cell, 3] + table[cell, 2]
        table[cell + 1, 5] = table[cell, 4] if cell == 0 else table[cell, 5] + table[cell, 4]
    for cell in range(1, size + 1):
        table[cell, 1] *= GRID_SECONDS
        table[cell, 3] *= GRID_SECONDS
        table[cell, 5] *= GRID_SECONDS
    table[size, 0] = 0.0
    table[size, 2] = 0.0
    table[size, 4] = 0.0
    return table


def _gather(
    table: FloatArray,
    start: FloatArray,
    first: FloatArray,
    last: FloatArray,
    arrival_cell: IntArray,
    minute: IntArray,
    opens: npt.NDArray[np.bool_],
    moved_chunks: FloatArray,
    steps: tuple[float, float, float, float],
    prefill_step: FloatArray,
    decoding: npt.NDArray[np.bool_],
    decode_step: FloatArray,
    batch: FloatArray,
    busy: FloatArray,
    closes: npt.NDArray[np.bool_],
    left_over: FloatArray,
    partial_steps: FloatArray,
    chunk_steps: FloatArray,
) -> float:  # pragma: no cover - run compiled within `_passes_loop`
    """`_passes_loop`'s gathers from the level table: each request's prefill and decode steps, mean batch and busy
    share, and each minute's partial and whole chunk steps (`steps`: base_s, per_kv_s, per_sequence_s,
    batch_cap). Returns the largest relative change of a decode step."""
    base_s, per_kv_s, per_sequence_s, batch_cap = steps
    count = len(first)
    size = len(table) - 1
    scale = 1.0 / GRID_SECONDS
    top = size - 2.0
    for m in range(len(partial_steps)):
        partial_steps[m] = 0.0
        chunk_steps[m] = 0.0
    change = 0.0
    for i in range(count):
        previous = decode_step[i]
        at_start = int(min(start[i] * scale, top))
        prefill_step[i] = base_s + per_kv_s * table[at_start, 2] + per_sequence_s * min(table[at_start, 0], batch_cap)
        decoding[i] = table[min(arrival_cell[i], size - 2), 0] > 0.5
        position = min(first[i] * scale, top)
        begin = int(position)
        begin_part = (position - begin) * GRID_SECONDS
        position = min(last[i] * scale, top)
        end = int(position)
        end_part = (position - end) * GRID_SECONDS
        span = last[i] - first[i]
        if span > GRID_SECONDS:
            batch[i] = (
                (table[end, 1] + table[end, 0] * end_part) - (table[begin, 1] + table[begin, 0] * begin_part)
            ) / span
            kv = ((table[end, 3] + table[end, 2] * end_part) - (table[begin, 3] + table[begin, 2] * begin_part)) / span
            busy_mean = (
                (table[end, 5] + table[end, 4] * end_part) - (table[begin, 5] + table[begin, 4] * begin_part)
            ) / span
        else:
            batch[i] = table[begin, 0]
            kv = table[begin, 2]
            busy_mean = table[begin, 4]
        decode_step[i] = base_s + per_kv_s * kv + per_sequence_s * min(batch[i], batch_cap)
        busy[i] = min(max(busy_mean, 0.0), 1.0)
        closes[i] = i + 1 == count or opens[i + 1]
        left_over[i] = moved_chunks[i] - np.floor(moved_chunks[i] + 1e-9)
        partial_steps[minute[i]] += 1.0 if closes[i] and left_over[i] > 1e-9 else 0.0
        chunk_steps[minute[i]] += np.ceil(moved_chunks[i] - 1e-9) if closes[i] else 0.0
        change = max(change, abs(decode_step[i] - previous) / previous)
    return change


def _chunk_shares(
    minute: IntArray,
    partial_steps: FloatArray,
    chunk_steps: FloatArray,
    prompt_per_minute: FloatArray,
    busy: FloatArray,
    decode_step: FloatArray,
    chunk: float,
    per_token_s: float,
    partial_part: FloatArray,
    share: FloatArray,
) -> None:  # pragma: no cover - run compiled within `_passes_loop`
    """Fills each request's share of intervals carrying a chunk, and the partial chunks' part of it."""
    for i in range(len(minute)):
        steps = max(chunk_steps[minute[i]], 1.0)
        partial_part[i] = partial_steps[minute[i]] / steps
        mean_chunk_tokens = prompt_per_minute[minute[i]] / steps
        with_chunk = busy[i] / (decode_step[i] + min(mean_chunk_tokens, chunk) * per_token_s)
        without = (1.0 - busy[i]) / decode_step[i]
        share[i] = with_chunk / max(with_chunk + without, 1e-300)


def _passes_loop(
    arrival: FloatArray,
    prompt: FloatArray,
    intervals: FloatArray,
    context: FloatArray,
    cum_prompt: FloatArray,
    cum_before: FloatArray,
    arrival_cell: IntArray,
    minute: IntArray,
    prompt_per_minute: FloatArray,
    prefill_step_in: FloatArray,
    decoding_in: npt.NDArray[np.bool_],
    chunk: float,
    per_token_s: float,
    stall_s: float,
    base_s: float,
    per_kv_s: float,
    per_sequence_s: float,
    batch_cap: float,
) -> _Passes:  # pragma: no cover - run compiled (numba); tests compare it with `_passes` both ways
    """`_passes` as loops over the requests, each floating-point operation in numpy's order (sums run
    sequentially as numpy's cumsum and bincount do), so that, compiled without fast-math, it gives the same
    bits. One pass reads each request's arrays a few times instead of some fifty temporaries. Its helpers
    (`_LOOP_HELPERS`) are compiled with it."""
    count = len(arrival)
    minutes = len(prompt_per_minute)
    prefill_step = prefill_step_in.copy()
    decoding = decoding_in.copy()
    decode_step = prefill_step_in.copy()
    share = np.zeros(count)
    partial_part = np.zeros(count)
    closes = np.ones(count, dtype=np.bool_)
    left_over = np.zeros(count)
    first = arrival.copy()
    last = np.empty(count)
    batch = np.zeros(count)
    start = np.empty(count)
    finish = np.empty(count)
    opens = np.empty(count, dtype=np.bool_)
    moved_chunks = np.empty(count)
    busy = np.empty(count)
    partial_steps = np.zeros(minutes)
    chunk_steps = np.zeros(minutes)
    steps = (base_s, per_kv_s, per_sequence_s, batch_cap)
    # The grid spans the stream (a week of minutes is 2.4 million cells): its arrays are allocated once per
    # call, with room for the horizon to move between passes, rather than once per pass as fresh mappings
    # whose pages the kernel faults in again (about half of the pass's time at a week).
    changes_store = np.empty((0, 4))
    table_store = np.empty((0, 6))
    for _ in range(_FIXED_POINT_PASSES):
        _channel_sweep(
            arrival, prompt, cum_prompt, cum_before, prefill_step, decoding, chunk, per_token_s,
            start, finish, opens, moved_chunks,
        )  # fmt: skip
        horizon = _first_and_last(
            finish, opens, moved_chunks, prefill_step, decode_step, share, intervals, stall_s, first, last
        )
        size = int(horizon / GRID_SECONDS) + 3
        if size > len(changes_store):
            changes_store = np.empty((size + size // 16, 4))
            table_store = np.empty((size + size // 16 + 1, 6))
        table = _level_table(first, last, start, finish, opens, context, changes_store[:size], table_store[: size + 1])
        change = _gather(
            table, start, first, last, arrival_cell, minute, opens, moved_chunks, steps, prefill_step, decoding,
            decode_step, batch, busy, closes, left_over, partial_steps, chunk_steps,
        )  # fmt: skip
        _chunk_shares(
            minute, partial_steps, chunk_steps, prompt_per_minute, busy, decode_step, chunk, per_token_s,
            partial_part, share,
        )  # fmt: skip
        if change < _SETTLED:
            break
    return first, decode_step, share, partial_part, batch, left_over, closes


_LOOP_HELPERS = (_channel_sweep, _first_and_last, _level_table, _gather, _chunk_shares)
"""The functions `_passes_loop` calls: numba compiles each for it (a compiled function calls compiled ones)."""

_COMPILED: list[Callable[..., _Passes] | None] = []


def _compiled_passes() -> Callable[..., _Passes] | None:
    """`_passes_loop` compiled by numba (the `simulate` extra), or None without numba: `_passes` then."""
    if not _COMPILED:
        try:
            import numba
        except ImportError:
            _COMPILED.append(None)
        else:
            jit = numba.njit(cache=True, nogil=True)
            helpers = {helper.__name__: jit(helper) for helper in _LOOP_HELPERS}
            loop = types.FunctionType(_passes_loop.__code__, {**globals(), **helpers}, _passes_loop.__name__)
            _COMPILED.append(jit(loop))
    return _COMPILED[0]


def serve(model: PerformanceModel, stream: RequestStream, *, prefill_chunk_tokens: int = 512) -> ServedRequests:
    """TTFT and inter-token intervals of every request of one replica (see the module docstring)."""
    count = len(stream)
    if count == 0:
        empty = np.zeros(0)
        return ServedRequests(empty, empty, empty, 0.0, empty, 0.0, empty, empty)
    arrival = np.ascontiguousarray(stream.arrival_s, dtype=np.float64)
    prompt = stream.prompt_tokens.astype(np.float64)
    output = np.maximum(stream.output_tokens, 1).astype(np.float64)
    intervals = output - 1.0
    chunk = float(prefill_chunk_tokens)
    per_token_s = 1.0 / model.prefill_tokens_per_s
    stall_s = chunk * per_token_s
    base_s = model.step_base_ms / 1000.0
    per_kv_s = model.step_ms_per_kv_position / 1000.0
    per_sequence_s = model.step_ms_per_sequence / 1000.0
    batch_cap = float(model.max_batch)
    context = prompt + output / 2.0
    # Start the fixed point from Little's law per minute (the capacity model's batch), not from an empty
    # replica: two passes then land where four from empty would.
    minute = ((arrival - arrival[0]) // 60.0).astype(np.int64)
    per_minute = np.bincount(minute).astype(np.float64)
    rate = per_minute / 60.0
    mean_of = np.maximum(per_minute, 1.0)
    prompt_m = np.bincount(minute, weights=prompt) / mean_of
    output_m = np.bincount(minute, weights=output) / mean_of
    context_m = prompt_m + output_m / 2.0
    room = 1.0 - rate * prompt_m * per_token_s - rate * output_m * (per_kv_s * context_m + per_sequence_s)
    batch_m = np.where(room > 0.05, rate * output_m * base_s / np.maximum(room, 0.05), rate * output_m * base_s / 0.05)
    step_m = base_s + (per_kv_s * context_m + per_sequence_s) * np.minimum(batch_m, batch_cap)
    prefill_step = step_m[minute]
    arrival_cell = (arrival * (1.0 / GRID_SECONDS)).astype(np.int64)
    prompt_per_minute = np.asarray(np.bincount(minute, weights=prompt, minlength=len(rate)), dtype=np.float64)
    cum_prompt = np.cumsum(prompt)
    passes = _compiled_passes() or _passes
    first, decode_step, share, partial_part, batch, left_over, closes = passes(
        arrival,
        prompt,
        intervals,
        context,
        cum_prompt,
        cum_prompt - prompt,
        arrival_cell,
        minute,
        prompt_per_minute,
        prefill_step,
        batch_m[minute] > 0.5,
        chunk,
        per_token_s,
        stall_s,
        base_s,
        per_kv_s,
        per_sequence_s,
        batch_cap,
    )
    ttft = first - arrival
    return ServedRequests(
        ttft_s=ttft,
        decode_step_s=decode_step,
        chunk_share=share * (1.0 - partial_part),
        chunk_stall_s=stall_s,
        intervals=intervals,
        mean_batch=float(np.mean(batch)),
        partial_share=share * partial_part,
        partial_fractions=np.sort(left_over[closes & (left_over > 1e-9)]),
    )


def thinned_arrivals(
    trace: TraceProfile,
    *,
    copies: int,
    first_offset: int,
    keep: FloatArray,
    rng: np.random.Generator,
    rows: IntArray | None = None,
) -> tuple[RequestStream, IntArray]:
    """One replica's requests, minute by minute, and the minute of each.

    The deployment's requests in minute t are `copies` copies of the trace (copy j shifted by
    first_offset + j*L//copies minutes, L the trace's length in minutes); the replica receives a share
    `keep[t]` of them (the day's load over the Ready replicas), every (1/keep[t])-th request from a
    random phase. With `rows`, keep[i] is the share of minute rows[i] (increasing) and the stream runs the
    chosen minutes back to back (minute i of the stream is rows[i]); each minute keeps the phase it has
    without `rows`, so runs over different minutes share their random numbers.
    """
    length = len(trace.requests_per_minute)
    seconds = trace.arrival_seconds
    trace_minute = (seconds // 60.0).astype(np.int64)
    counts = np.bincount(trace_minute[trace_minute < length], minlength=length).astype(np.int64)
    first_request = np.concatenate([[0], np.cumsum(counts)[:-1]])
    minutes = len(keep)
    replay_minute = np.arange(minutes) if rows is None else np.asarray(rows, dtype=np.int64)
    offsets = first_offset + (np.arange(copies) * length) // copies
    cell_minute = (replay_minute[:, None] + offsets[None, :]) % length
    cell_count = counts[cell_minute]
    union = cell_count.sum(axis=1)
    share = np.clip(keep, 0.0, 1.0)
    phase = rng.random(minutes) if rows is None else rng.random(int(replay_minute[-1]) + 1 if minutes else 0)[rows]
    taken = np.where(share > 0, np.maximum(np.ceil(union * share - phase), 0.0), 0.0).astype(np.int64)
    taken = np.minimum(taken, union)
    total = int(taken.sum())
    minute_of = np.repeat(np.arange(minutes), taken)
    rank = np.arange(total) - np.repeat(np.cumsum(taken) - taken, taken)
    safe_share = np.where(share > 0, share, 1.0)
    position = np.floor((rank + phase[minute_of]) / safe_share[minute_of]).astype(np.int64)
    row_start = np.cumsum(union) - union
    cell_end = (np.cumsum(cell_count, axis=1) + row_start[:, None]).ravel()
    global_position = row_start[minute_of] + np.minimum(position, union[minute_of] - 1)
    # The cell each position falls in: global_position is non-decreasing (minute by minute, rank by rank),
    # so counting the positions below each cell's end (one search per cell, not one per request) and
    # repeating each cell's index that often gives searchsorted(cell_end, global_position, "right").
    below_end = np.searchsorted(global_position, cell_end, side="left")
    cell = np.repeat(np.arange(len(cell_end) + 1), np.diff(below_end, prepend=0, append=total))
    flat_count = cell_count.ravel()
    within = global_position - (cell_end[cell] - flat_count[cell])
    source_minute = cell_minute.ravel()[cell]
    request = first_request[source_minute] + within
    arrival = minute_of * 60.0 + (seconds[request] - source_minute * 60.0)
    order = np.argsort(arrival, kind="stable")
    stream = RequestStream(
        arrival_s=arrival[order],
        prompt_tokens=trace.prompt_tokens[request][order],
        output_tokens=trace.output_tokens[request][order],
    )
    return stream, minute_of[order]


@dataclass(frozen=True)
class MinuteLatency:
    """Per minute: requests, and the share of requests (TTFT) and of inter-token intervals (TPOT) over the SLO."""

    requests: IntArray
    ttft_over_share: FloatArray
    tpot_over_share: FloatArray

    def within(self, quantile: float) -> npt.NDArray[np.bool_]:
        """p95 (the quantile) within the SLO: at most 1 - quantile of requests / intervals over it."""
        allowed = 1.0 - quantile + 1e-12
        ok: npt.NDArray[np.bool_] = (self.ttft_over_share <= allowed) & (self.tpot_over_share <= allowed)
        return ok


def minute_latency(
    served: ServedRequests, minute_of: IntArray, minutes: int, *, ttft_slo_ms: float, tpot_slo_ms: float
) -> MinuteLatency:
    requests = np.bincount(minute_of, minlength=minutes)
    ttft_over = np.bincount(
        minute_of, weights=(served.ttft_s * 1000.0 > ttft_slo_ms).astype(np.float64), minlength=minutes
    )
    intervals = np.bincount(minute_of, weights=served.intervals, minlength=minutes)
    tpot_over = np.bincount(minute_of, weights=served.tpot_over(tpot_slo_ms / 1000.0), minlength=minutes)
    return MinuteLatency(
        requests=requests.astype(np.int64),
        ttft_over_share=np.where(requests > 0, ttft_over / np.maximum(requests, 1), 0.0),
        tpot_over_share=np.where(intervals > 0, tpot_over / np.maximum(intervals, 1e-300), 0.0),
    )


BURST_WINDOW_SECONDS = 10.0
"""Window over which the prompt work's index of dispersion is measured: long enough to hold the code
trace's clumps of long prompts (a few seconds), short against the minute over which a deployment's rate
is known; the queue of a replica near its SLO capacity drains within it."""


@dataclass(frozen=True)
class Burstiness:
    """What a replica's request stream says about its queue: measured, not assumed."""

    arrival_scv: float
    """Squared coefficient of variation of inter-arrival times (1 for Poisson)."""
    work_dispersion: float
    """Var(prompt tokens arriving in a window) / (E[same] x mean prompt): c_a^2 + c_s^2 for renewal arrivals."""
    prompt_mean_tokens: float
    prompt_p95_tokens: float
    traffic: TrafficShape
    """The prompt distribution and the dispersion per window, for the capacity model."""


def _work_dispersion(arrival_s: FloatArray, prompts: FloatArray, window_s: float) -> float:
    """Index of dispersion of the prompt work in windows of `window_s` around each minute's mean: the rate is
    known minute by minute (per-minute sizing follows it), so what is left is what a replica's queue sees
    within a minute."""
    windows = (arrival_s // window_s).astype(np.int64)
    work = np.bincount(windows - windows[0], weights=prompts)
    minute_index = np.arange(len(work)) // max(round(60.0 / window_s), 1)
    minute_mean = np.bincount(minute_index, weights=work) / np.bincount(minute_index)
    residual = work - minute_mean[minute_index]
    mean_work = float(work.mean())
    return float((residual**2).mean() / (mean_work * prompts.mean())) if mean_work > 0 else 0.0


def measure(stream: RequestStream, window_s: float = BURST_WINDOW_SECONDS) -> Burstiness:
    """Burstiness and prompt tail of a request stream (minute-level rate changes removed: per-minute sizing
    follows them; what is left is what one replica's queue sees within a minute)."""
    if len(stream) < 3:
        raise ValueError("measure: need at least 3 requests")
    prompts = stream.prompt_tokens.astype(np.float64)
    gaps = np.diff(stream.arrival_s)
    windows = (stream.arrival_s // window_s).astype(np.int64)
    work = np.bincount(windows - windows[0], weights=prompts)
    minute = (np.arange(len(work)) * window_s + windows[0] * window_s) // 60.0
    minute_index = (minute - minute[0]).astype(np.int64)
    minute_mean = np.bincount(minute_index, weights=work) / np.bincount(minute_index)
    residual = work - minute_mean[minute_index]
    mean_work = float(work.mean())
    span = float(stream.arrival_s[-1] - stream.arrival_s[0])
    probabilities = (np.arange(PROMPT_QUANTILE_POINTS) + 0.5) / PROMPT_QUANTILE_POINTS
    traffic = TrafficShape(
        prompt_quantiles=np.quantile(prompts, probabilities),
        dispersion_curve=np.asarray([_work_dispersion(stream.arrival_s, prompts, w) for w in DISPERSION_WINDOWS_S]),
        rate=len(stream) / max(span, 1e-9),
    )
    return Burstiness(
        arrival_scv=float(gaps.var() / gaps.mean() ** 2) if gaps.mean() > 0 else 0.0,
        work_dispersion=float((residual**2).mean() / (mean_work * prompts.mean())) if mean_work > 0 else 0.0,
        prompt_mean_tokens=float(prompts.mean()),
        prompt_p95_tokens=float(np.quantile(prompts, 0.95)),
        traffic=traffic,
    )


def prompt_mix_cv(trace: TraceProfile, copies: int, *, offset: int, minutes: int = 60) -> float:
    """Coefficient of variation of the mean prompt length from minute to minute of `copies` tenants of the trace
    from `offset` (each shifted by an equal share of its length, as the replay superposes them), over `minutes`:
    how much a minute's mix of short and long prompts moves about the traffic's. Every replica of the
    deployment sees its minute's mix, so unlike a minute's own count this does not shrink as replicas are added
    (issue 14: conv-06, eight conversation copies, missed its minutes on the spread of the minute's mean
    prompt, about 3%, where its count was as forecast). What the operator could read from vLLM's prompt-token
    and request counters per minute; here measured on a calibration hour (CapacityInputs.prompt_mix_cv)."""
    length = len(trace.requests_per_minute)
    trace_minute = (trace.arrival_seconds // 60.0).astype(np.int64)
    # Whole minutes only, as the replay plays them (requests_per_minute): found in review, the last, unfinished
    # minute's requests were counted into the last whole one (a user trace cut 40 s into a run of long prompts
    # read a cv of 0.39 where the minutes replayed have 0.03, and a floor 34% too low).
    whole = trace_minute < length
    tokens = np.bincount(trace_minute[whole], weights=trace.prompt_tokens[whole].astype(np.float64), minlength=length)
    counts = np.bincount(trace_minute[whole], minlength=length).astype(np.float64)
    offsets = offset + (np.arange(copies) * length) // copies
    cells = (np.arange(minutes)[:, None] + offsets[None, :]) % length
    requests = counts[cells].sum(axis=1)
    means = tokens[cells].sum(axis=1)[requests > 0] / requests[requests > 0]
    if len(means) < 2 or means.mean() <= 0:
        return 0.0
    return float(means.std() / means.mean())


def steady_stream(
    trace: TraceProfile, copies: int, *, offset: int, rate: float, seed: int, minutes: int = 60
) -> RequestStream:
    """One replica's requests at a steady `rate` (req/s) for `minutes`: `copies` tenants of the trace from
    `offset`, thinned round-robin as `thinned_arrivals` does. For calibration (`measure`) and benchmarks."""
    length = len(trace.requests_per_minute)
    offsets = offset + (np.arange(copies) * length) // copies
    union = trace.requests_per_minute[(np.arange(minutes)[:, None] + offsets[None, :]) % length].sum(axis=1)
    keep = rate * 60.0 / np.maximum(union, 1e-9)
    stream, _ = thinned_arrivals(trace, copies=copies, first_offset=offset, keep=keep, rng=np.random.default_rng(seed))
    return stream
