"""Window statistics of streamed requests and request shapes, on hand-made timelines and the Azure trace."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gridshift.profiling import (
    RequestShape,
    StreamRecord,
    WindowStats,
    load_trace_shapes,
    queued_requests,
    summarise_window,
)
from gridshift.profiling.workload import PROMPT_TOKEN_ID_RANGE, PromptMaker


def record(
    start: float, first: float, gap: float, tokens: int, prompt: int = 100, end: float | None = None
) -> StreamRecord:
    times = [first + i * gap for i in range(tokens)]
    return StreamRecord(
        shape=RequestShape(prompt, tokens),
        started_at=start,
        first_token_at=first,
        chunk_times=times,
        chunk_token_counts=list(range(1, tokens + 1)),
        ended_at=times[-1] if end is None else end,
        completed=end is None,
    )


def test_two_steady_streams_give_their_step_time_batch_and_throughput() -> None:
    # Two streams, a token every 10 ms each, in flight over the whole window [1, 2].
    records = [record(0.0, 0.05, 0.010, 300), record(0.0, 0.055, 0.010, 300)]
    stats = summarise_window(records, 1.0, 2.0)
    assert stats.itl_ms_mean == pytest.approx(10.0)
    assert stats.itl_ms_p50 == pytest.approx(10.0) and stats.itl_ms_p95 == pytest.approx(10.0)
    assert stats.mean_in_flight == pytest.approx(2.0)
    assert stats.mean_decoding == pytest.approx(2.0, abs=0.02) and stats.running_batch == stats.mean_decoding
    assert stats.output_tokens_per_s == pytest.approx(200.0, abs=2.0)
    # Tokens at t in [1, 2] of a stream whose first token came at 0.05: indices 95..195 -> contexts 100+95..
    assert stats.mean_context_tokens == pytest.approx(100 + 145, abs=1.5)
    assert stats.ttft_ms_p50 is None  # no first token inside the window
    assert stats.requests_completed == 0


def test_requests_the_server_queued_are_in_flight_but_not_in_the_batch() -> None:
    # Found in review: the batch was the client's requests in flight, so two streams decoding while six more
    # waited in the server's queue (vLLM's --max-num-seqs) made a point of batch 8 at batch 2's step time.
    decoding = [record(0.0, 0.05, 0.010, 300), record(0.0, 0.055, 0.010, 300)]
    queued = [StreamRecord(shape=RequestShape(100, 300), started_at=0.5) for _ in range(6)]
    stats = summarise_window(decoding + queued, 1.0, 2.0)
    assert stats.mean_in_flight == pytest.approx(8.0)
    assert stats.mean_decoding == pytest.approx(2.0, abs=0.02)
    assert stats.running_batch == pytest.approx(2.0, abs=0.02)
    # Little's law: the streams decoding are the tokens per second times the time each token takes.
    assert stats.mean_decoding == pytest.approx(stats.output_tokens_per_s * stats.itl_ms_mean / 1000.0, rel=0.02)


def closed_loop(
    clients: int, queue_s: float, ttft_s: float = 0.3, step_s: float = 0.025, tokens: int = 256
) -> WindowStats:
    """[30, 90] s of clients that each resend at once, staggered evenly over a request's cycle: each request
    waits queue_s in the server's queue, then ttft_s of prefill, then one token every step_s."""
    cycle = queue_s + ttft_s + (tokens - 1) * step_s
    records = []
    for client in range(clients):
        start = client * cycle / clients
        while start < 120.0:
            first = start + queue_s + ttft_s
            records.append(record(start, first, step_s, tokens, prompt=1000))
            start = records[-1].ended_at or 0.0
    return summarise_window(records, 30.0, 90.0)


def test_a_server_that_only_prefills_queued_nothing() -> None:
    # Found in review: every request in flight but not decoding was taken as queued, so a server decoding
    # all of its 32 clients' requests at once (0.3 s TTFT, 256 tokens of 25 ms) was said to have queued some.
    one, healthy = closed_loop(1, 0.0), closed_loop(32, 0.0)
    assert healthy.mean_in_flight == pytest.approx(32.0, abs=0.05)
    assert healthy.mean_decoding == pytest.approx(32 * 255 * 0.025 / (0.3 + 255 * 0.025), rel=0.01)  # 30.56
    assert queued_requests(healthy, one) == pytest.approx(0.0, abs=0.01)
    # The same clients against 8 slots (vLLM's --max-num-seqs 8): 24 wait in the queue, three requests long.
    queued = closed_loop(32, 3 * (0.3 + 255 * 0.025))
    assert queued.running_batch == pytest.approx(8 * 255 / (0.3 / 0.025 + 255), rel=0.01)
    assert queued_requests(queued, one) == pytest.approx(24.0, abs=0.5)
    # Without a first token at either level there is nothing to compare: nothing is said to be queued.
    assert queued_requests(queued, replace(one, prefill_tokens_per_s=None)) == 0.0


def test_ttft_prefill_rate_and_completions_inside_the_window() -> None:
    records = [record(1.0, 1.2, 0.01, 20, prompt=2000), record(1.5, 1.6, 0.01, 20, prompt=2000)]
    stats = summarise_window(records, 1.0, 3.0)
    assert stats.ttft_ms_p50 == pytest.approx(150.0)
    assert stats.ttft_ms_p95 == pytest.approx(195.0)
    assert stats.prefill_tokens_per_s == pytest.approx((2000 / 0.2 + 2000 / 0.1) / 2)
    assert stats.requests_completed == 2
    assert stats.output_tokens == 40
    # In flight: [1.0, 1.39] and [1.5, 1.79] over a 2 s window.
    assert stats.mean_in_flight == pytest.approx((0.39 + 0.29) / 2.0)


def test_chunks_holding_several_tokens_count_each_token() -> None:
    # One chunk every 20 ms holding 2 tokens: 10 ms per token.
    times = [0.02 * i for i in range(1, 101)]
    multi = StreamRecord(
        shape=RequestShape(10, 200),
        started_at=0.0,
        first_token_at=times[0],
        chunk_times=times,
        chunk_token_counts=[2 * i for i in range(1, 101)],
        ended_at=times[-1],
        completed=True,
    )
    stats = summarise_window([multi], 0.0, 2.0)
    assert stats.itl_ms_mean == pytest.approx(10.0)
    assert stats.output_tokens == 200


def test_a_window_without_consecutive_tokens_is_refused() -> None:
    with pytest.raises(ValueError, match="measure longer"):
        summarise_window([record(0.0, 0.5, 1.0, 2)], 0.6, 1.4)
    with pytest.raises(ValueError, match="window must be positive"):
        summarise_window([], 1.0, 1.0)


def test_azure_trace_lengths_are_read_and_clipped(shared_data: Path) -> None:
    path = shared_data / "llm-traces" / "AzureLLMInferenceTrace_conv.csv"
    shapes = load_trace_shapes(path, max_prompt_tokens=2048, max_output_tokens=128, limit=500)
    assert len(shapes) == 500
    assert shapes[0] == RequestShape(374, 44)  # the trace's first row
    assert max(s.prompt_tokens for s in shapes) == 2048
    assert max(s.output_tokens for s in shapes) == 128
    assert min(s.output_tokens for s in shapes) >= 2


def test_bad_traces_are_refused_naming_the_problem(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("time,prompt\n1,2\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['ContextTokens', 'GeneratedTokens'\]"):
        load_trace_shapes(wrong, max_prompt_tokens=10, max_output_tokens=10)
    bad = tmp_path / "bad.csv"
    bad.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\nx,many,3\n")
    with pytest.raises(ValueError, match="line 2"):
        load_trace_shapes(bad, max_prompt_tokens=10, max_output_tokens=10)
    with pytest.raises(ValueError, match="cannot read"):
        load_trace_shapes(tmp_path / "absent.csv", max_prompt_tokens=10, max_output_tokens=10)
    # Found in review: -50 output tokens became 2 and a negative prompt was dropped, without a word.
    underscored = tmp_path / "underscored.csv"
    underscored.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n0,1_000,5\n")
    with pytest.raises(ValueError, match="line 2: ContextTokens/GeneratedTokens must be integers"):
        load_trace_shapes(underscored, max_prompt_tokens=10, max_output_tokens=10)  # int() read 1_000 (review)
    for row in ("1,100,-50", "2,-5,10"):
        negative = tmp_path / "negative.csv"
        negative.write_text(f"TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,5\n{row}\n")
        with pytest.raises(ValueError, match="line 3: ContextTokens/GeneratedTokens must be >= 0"):
            load_trace_shapes(negative, max_prompt_tokens=10, max_output_tokens=10)


def test_prompts_have_the_asked_length_and_differ() -> None:
    maker = PromptMaker(seed=7)
    first, second = maker.token_ids(512), maker.token_ids(512)
    assert len(first) == 512 and first != second
    assert all(PROMPT_TOKEN_ID_RANGE[0] <= t < PROMPT_TOKEN_ID_RANGE[1] for t in first)
    assert len(maker.words(300).split()) == 300
    assert PromptMaker(seed=7).token_ids(512) == first


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00,100\n", r"line 2: ContextTokens/Gener"),
        (b"TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00,\xff,4\n", r"not UTF-8 text"),
    ],
)
def test_a_bad_request_trace_is_refused_naming_the_file(tmp_path: Path, body: bytes, message: str) -> None:
    # Found in review: a short row was a TypeError traceback; a non-UTF-8 byte named no file.
    path = tmp_path / "trace.csv"
    path.write_bytes(body)
    with pytest.raises(ValueError, match=message) as caught:
        load_trace_shapes(path, max_prompt_tokens=1000, max_output_tokens=100)
    assert str(path) in str(caught.value)


_AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        # int() read each of these (review): "1_0" as 10, full-width and Arabic-Indic digits as ASCII ones.
        ("0,100,4\n1,1_0,4\n", r"line 3: ContextTokens/GeneratedTokens must be integers; ContextTokens is '1_0' \("),
        ("0,100,4\n1,１２,4\n", r"line 3: .* must be integers; ContextTokens is '１２' \(not an integer\)$"),
        ("0,100,4\n1,100,1_0\n", r"line 3: .* must be integers; GeneratedTokens is '1_0' \(not an integer\)$"),
        ("0,100,４\n", r"line 2: .* must be integers; GeneratedTokens is '４' \(not an integer\)$"),
        ("0,١٢,4\n", r"line 2: .* must be integers; ContextTokens is '١٢' \(not an integer\)$"),
        ("0,12.0,4\n", r"line 2: .* must be integers; ContextTokens is '12.0' \(not an integer\)$"),
        ("0,100\n", r"line 2: .* must be integers; GeneratedTokens is missing \(the row is short\)$"),
        # Found in review: the whole cell went into the message, with Python's advice to raise its digit limit.
        ("0," + "7" * 5000 + ",4\n", r"ContextTokens is '7{19}\.\.\. \(5,000 characters\) \(more than 4,300 digits\)$"),
        ("0," + "7" * 100 + "x,4\n", r"ContextTokens is '7{19}\.\.\. \(101 characters\) \(not an integer\)$"),
    ],
)
def test_a_token_count_written_other_than_plainly_is_refused_naming_the_cell(
    tmp_path: Path, rows: str, message: str
) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(_AZURE_HEADER + rows, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as caught:
        load_trace_shapes(path, max_prompt_tokens=1000, max_output_tokens=100)
    assert str(caught.value).startswith(f"trace {path}, line ")


def test_a_request_trace_with_spaces_around_its_cells_reads_as_without(tmp_path: Path) -> None:
    # The spaces are the file's layout (int() stripped them; the strict reading strips them first).
    rows = [(0, 374, 44), (1, 396, 109), (2, 12, 1)]
    tight, spaced = tmp_path / "tight.csv", tmp_path / "spaced.csv"
    tight.write_text(_AZURE_HEADER + "".join(f"{t},{p},{o}\n" for t, p, o in rows))
    spaced.write_text(_AZURE_HEADER + "".join(f"{t}, {p} ,\t{o}\n" for t, p, o in rows))
    shapes = load_trace_shapes(tight, max_prompt_tokens=1000, max_output_tokens=100)
    assert shapes == load_trace_shapes(spaced, max_prompt_tokens=1000, max_output_tokens=100)
    assert shapes == [RequestShape(374, 44), RequestShape(396, 100), RequestShape(12, 2)]


def test_the_profile_step_time_is_the_median_gap_not_the_mean_with_prefill_stalls() -> None:
    # Tokens every 10 ms, but one gap in ten is a 100 ms stall (a step carrying another request's prefill
    # chunk): the mean is about 19 ms, the step 10 ms. The capacity model adds such stalls itself, so the profile
    # takes the median (it took the mean, counting the stalls twice).
    from gridshift.profiling.build import profile_points
    from gridshift.profiling.sweep import LevelMeasurement

    gaps = [0.1 if i % 10 == 9 else 0.01 for i in range(200)]
    times = [0.05 + sum(gaps[:i]) for i in range(len(gaps))]
    stalled = StreamRecord(
        shape=RequestShape(100, len(times)),
        started_at=0.0,
        first_token_at=times[0],
        chunk_times=times,
        chunk_token_counts=list(range(1, len(times) + 1)),
        ended_at=times[-1],
        completed=True,
    )
    stats = summarise_window([stalled], 0.0, times[-1])
    assert stats.itl_ms_mean > 18 and stats.itl_ms_p50 == pytest.approx(10.0)
    (point,) = profile_points([LevelMeasurement(1, stats, energy_joules=100.0, power_watts=300.0)], 5000.0)
    assert point.step_time_ms == pytest.approx(10.0)


def test_a_trace_saved_with_a_bom_is_read(tmp_path: Path) -> None:
    # Review: a file saved by Excel starts with a BOM, and "missing column(s) ['ContextTokens']" was the answer.
    path = tmp_path / "trace.csv"
    path.write_text("\ufeffContextTokens,GeneratedTokens\n10,5\n", encoding="utf-8")
    assert len(load_trace_shapes(path, max_prompt_tokens=100, max_output_tokens=100)) == 1
