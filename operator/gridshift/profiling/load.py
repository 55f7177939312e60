"""The load driver: streams requests to an OpenAI-compatible server at a fixed concurrency and times tokens.

`stream_request` sends one streaming /v1/completions or /v1/chat/completions request and records
when each token arrived; `summarise_window` turns the records of one concurrency level into its
time to first token, inter-token latency, throughput and running batch over a measured window;
`queued_requests` tells the requests a server queued from those it was prefilling.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from gridshift.profiling.settings import LoadSettings
from gridshift.profiling.workload import PromptMaker, RequestShape
from gridshift.redaction import MIN_SECRET_LENGTH, display_url


def endpoint_url(endpoint: str, path: str) -> httpx.URL:
    """`path` under the endpoint's base path, its query kept (appended to the text, the path landed after a
    query string: `...?api_key=K/v1/models`)."""
    base = httpx.URL(endpoint)
    return base.copy_with(path=base.path.rstrip("/") + path)


class EndpointError(RuntimeError):
    """The server refused or broke a request; the message names the URL and what it said."""


class WindowError(ValueError):
    """A measured window holds too little to summarise; the message says what to change."""


@dataclass
class StreamRecord:
    """Timeline of one streamed request (monotonic seconds)."""

    shape: RequestShape
    started_at: float
    first_token_at: float | None = None
    chunk_times: list[float] = field(default_factory=list)
    """Arrival of each chunk that carried tokens."""
    chunk_token_counts: list[int] = field(default_factory=list)
    """Completion tokens received so far at each of those chunks."""
    ended_at: float | None = None
    completed: bool = False


def request_body(settings: LoadSettings, shape: RequestShape, prompts: PromptMaker) -> tuple[str, dict[str, Any]]:
    """Path and JSON body of one streaming request."""
    body: dict[str, Any] = {
        "model": settings.served_model,
        "max_tokens": shape.output_tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if settings.vllm_extensions:
        body["ignore_eos"] = True
        body["min_tokens"] = shape.output_tokens
        body["stream_options"]["continuous_usage_stats"] = True
    if settings.api == "completions":
        body["prompt"] = prompts.token_ids(shape.prompt_tokens)
        return "/v1/completions", body
    body["messages"] = [{"role": "user", "content": prompts.words(shape.prompt_tokens)}]
    return "/v1/chat/completions", body


def _chunk_has_text(chunk: dict[str, Any]) -> bool:
    for choice in chunk.get("choices") or ():
        if choice.get("text") or (choice.get("delta") or {}).get("content"):
            return True
    return False


def _usage_tokens(chunk: dict[str, Any]) -> int | None:
    usage = chunk.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        return int(usage["completion_tokens"])
    return None


def _hidden(text: str, url: httpx.URL) -> str:
    """`text` (a server's answer, an error's) without the URL's query, its values and its password, encoded or not.

    A server may echo the path it was asked, or a key's value (review): the query may hold a key, and the
    user:password@ a password. Found in review: only a refusal's body was so filtered; a streamed error or a
    line that is not JSON was quoted whole, and could echo them too."""
    query = url.query.decode(errors="replace")
    raw_values = (pair.partition("=")[2] for pair in query.split("&"))  # as sent: percent-encoded
    hidden = dict.fromkeys((query, *raw_values, *(value for _, value in url.params.multi_items())), "<query omitted>")
    if url.userinfo:
        hidden |= dict.fromkeys((url.userinfo.decode(errors="replace"), url.password), "<password omitted>")
    # As quoted: JSON (a streamed error) and repr (a line that is not JSON) escape a value's quotes and backslashes.
    forms = {
        form: marker for value, marker in hidden.items() for form in (value, json.dumps(value)[1:-1], repr(value)[1:-1])
    }
    # As long as gridshift.redaction asks of a secret: shorter values are words ("true", "1000") that hiding would
    # blank out of every message (review: a streamed "max_tokens 1000 exceeds the limit 1000" read
    # "max_tokens <query omitted> exceeds ..." for an endpoint URL with ?max_tokens=1000).
    for form in sorted((f for f in forms if len(f) >= MIN_SECRET_LENGTH), key=len, reverse=True):
        text = text.replace(form, forms[form])
    return text


async def stream_request(
    client: httpx.AsyncClient,
    settings: LoadSettings,
    record: StreamRecord,
    prompts: PromptMaker,
    clock: Any,
) -> None:
    """Send one request and fill `record` as its tokens arrive; raises EndpointError on refusal."""
    path, body = request_body(settings, record.shape, prompts)
    url = endpoint_url(settings.endpoint, path)
    shown = display_url(url)
    try:
        async with client.stream("POST", url, json=body, timeout=settings.request_timeout_seconds) as response:
            if response.status_code != 200:
                detail = _hidden((await response.aread()).decode(errors="replace"), url)[:500]
                raise EndpointError(f"POST {shown} answered HTTP {response.status_code}: {detail}")
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                now = clock()
                try:
                    chunk = json.loads(data)
                except json.JSONDecodeError:
                    line_shown = _hidden(repr(data), url)[:200]
                    raise EndpointError(f"POST {shown} streamed a line that is not JSON: {line_shown}") from None
                if "error" in chunk:
                    error_shown = _hidden(json.dumps(chunk["error"]), url)[:500]
                    raise EndpointError(f"POST {shown} streamed an error: {error_shown}")
                counted = _usage_tokens(chunk)
                previous = record.chunk_token_counts[-1] if record.chunk_token_counts else 0
                if _chunk_has_text(chunk):
                    total = counted if counted is not None and counted > previous else previous + 1
                    if record.first_token_at is None:
                        record.first_token_at = now
                    record.chunk_times.append(now)
                    record.chunk_token_counts.append(total)
                elif counted is not None and counted > previous and record.chunk_token_counts:
                    # A usage-only chunk says the text chunks held more tokens than one each.
                    record.chunk_token_counts[-1] = counted
            record.completed = True
    except (httpx.HTTPError, UnicodeError) as error:  # UnicodeError: a host IDNA cannot encode (review)
        raise EndpointError(f"POST {shown} failed: {type(error).__name__}: {_hidden(str(error), url)}") from error
    finally:
        record.ended_at = clock()


@dataclass(frozen=True)
class WindowStats:
    """Latency and throughput of one concurrency level over its measured window."""

    window_s: float
    output_tokens: int
    """Completion tokens that arrived inside the window."""
    output_tokens_per_s: float
    requests_completed: int
    """Requests that finished inside the window."""
    ttft_ms_p50: float | None
    ttft_ms_p95: float | None
    itl_ms_mean: float
    """Mean time between tokens of a stream: the decode step time at this load, ms."""
    itl_ms_p50: float
    itl_ms_p95: float
    mean_in_flight: float
    """Time-weighted mean of requests in flight as the client sees them: prefilling, decoding, or waiting in
    the server's queue."""
    mean_decoding: float
    """Time-weighted mean of streams between two of their tokens: the sequences the server decoded at once,
    by Little's law output tokens/s x mean inter-token latency (a running sequence emits one token a step).
    At most mean_in_flight: below it by prefill, and by requests the server queued (vLLM's --max-num-seqs)."""
    mean_context_tokens: float
    """Mean KV positions per sequence over the decode steps inside the window."""
    prefill_tokens_per_s: float | None
    """Median of prompt tokens / TTFT: the prefill rate a request saw at this load."""

    @property
    def running_batch(self) -> float:
        """The batch the server ran: the streams it decoded, not the client's requests in flight. Found in
        review: with vLLM's --max-num-seqs 4 at concurrency 16 the profile said batch 16 at batch 4's step
        time, and its fitted model promised 3.7x the throughput measured."""
        return min(self.mean_in_flight, self.mean_decoding)


def queued_requests(stats: WindowStats, least_loaded: WindowStats) -> float:
    """Requests the server held before their prefill, time-weighted over the window: the requests in flight
    but not decoding, times the share of their time to first token beyond what the least-loaded level's
    prefill rate (prompt tokens / TTFT, its median) explains. 0 where either level saw no first token.

    Found in review: every request in flight but not decoding was taken as queued, so a server that queued
    nothing (32 clients, all 32 decoding, 0.3 s TTFT, 256 tokens of 25 ms) was said to have queued 1.5 of
    them, its prefill, and more concurrency to add latency but no throughput."""
    rate, reference = stats.prefill_tokens_per_s, least_loaded.prefill_tokens_per_s
    if rate is None or reference is None or not reference > 0:
        return 0.0
    not_decoding = max(0.0, stats.mean_in_flight - stats.mean_decoding)
    return not_decoding * max(0.0, 1.0 - rate / reference)


def summarise_window(records: Sequence[StreamRecord], window_start: float, window_end: float) -> WindowStats:
    """Statistics of the tokens and requests of one level that fall inside [window_start, window_end]."""
    window = window_end - window_start
    if window <= 0:
        raise ValueError(f"window must be positive, got {window} s")
    gaps: list[float] = []
    gap_tokens: list[int] = []
    contexts: list[float] = []
    output_tokens = 0
    in_flight_seconds = 0.0
    for record in records:
        end = record.ended_at if record.ended_at is not None else window_end
        in_flight_seconds += max(0.0, min(end, window_end) - max(record.started_at, window_start))
        previous_time, previous_count = None, 0
        for at, count in zip(record.chunk_times, record.chunk_token_counts, strict=True):
            if window_start <= at <= window_end:
                output_tokens += count - previous_count
                if previous_time is not None and previous_time >= window_start and count > previous_count:
                    gaps.append(at - previous_time)
                    gap_tokens.append(count - previous_count)
                    contexts.append(record.shape.prompt_tokens + previous_count)
            previous_time, previous_count = at, count
    if not gaps:
        raise WindowError(
            f"no two consecutive tokens of a stream arrived inside the {window:.1f} s measured window: measure "
            "longer (--measure-seconds, --warmup-seconds) or ask for shorter prompts or longer outputs"
        )
    per_token = np.repeat(np.array(gaps) / np.array(gap_tokens), gap_tokens)
    ttfts = [
        (r.first_token_at - r.started_at, r.shape.prompt_tokens)
        for r in records
        if r.first_token_at is not None and window_start <= r.first_token_at <= window_end
    ]
    ttft_ms = np.array([t for t, _ in ttfts]) * 1000.0
    prefill_rates = [prompt / t for t, prompt in ttfts if t > 0]
    return WindowStats(
        window_s=window,
        output_tokens=output_tokens,
        output_tokens_per_s=output_tokens / window,
        requests_completed=sum(
            1 for r in records if r.completed and r.ended_at is not None and window_start <= r.ended_at <= window_end
        ),
        ttft_ms_p50=float(np.percentile(ttft_ms, 50)) if ttfts else None,
        ttft_ms_p95=float(np.percentile(ttft_ms, 95)) if ttfts else None,
        itl_ms_mean=float(np.sum(gaps) / np.sum(gap_tokens) * 1000.0),
        itl_ms_p50=float(np.percentile(per_token, 50) * 1000.0),
        itl_ms_p95=float(np.percentile(per_token, 95) * 1000.0),
        mean_in_flight=in_flight_seconds / window,
        mean_decoding=float(np.sum(gaps)) / window,
        mean_context_tokens=float(np.average(contexts, weights=gap_tokens)),
        prefill_tokens_per_s=float(np.median(prefill_rates)) if prefill_rates else None,
    )
