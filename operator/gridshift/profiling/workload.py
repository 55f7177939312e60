"""What each profiling request asks for: prompt and output lengths, fixed or from a recorded trace.

Traces use the Azure LLM inference trace format (`TIMESTAMP,ContextTokens,GeneratedTokens`,
Patel et al., "Splitwise", ISCA 2024); only the lengths are used, as the sweep sets the concurrency.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from gridshift.csv_rows import csv_rows, open_csv
from gridshift.numerals import plain_integer, shown

# Token ids drawn for prompts: above the special and byte tokens of common vocabularies (Llama 3's
# 128k, Qwen's 151k, Mistral's 32k) and below the smallest of them.
PROMPT_TOKEN_ID_RANGE = (1000, 30000)
PROMPT_WORDS = ("energy", "grid", "power", "token", "model", "region", "price", "batch", "cluster", "latency")


@dataclass(frozen=True)
class RequestShape:
    """Lengths of one request."""

    prompt_tokens: int
    output_tokens: int


def fixed_shapes(prompt_tokens: int, output_tokens: int) -> Iterator[RequestShape]:
    """The same shape forever."""
    return itertools.repeat(RequestShape(prompt_tokens, output_tokens))


def load_trace_shapes(
    path: Path,
    *,
    max_prompt_tokens: int,
    max_output_tokens: int,
    limit: int | None = None,
) -> list[RequestShape]:
    """Request lengths of an Azure-format trace, clipped to the server's limits.

    Outputs shorter than 2 tokens are raised to 2 so each request has an inter-token gap.
    """
    try:
        handle = open_csv(path)
    except OSError as error:
        raise ValueError(f"trace {path}: cannot read ({error.strerror})") from None
    with handle:
        try:
            shapes = _read_shapes(path, handle, max_prompt_tokens, max_output_tokens, limit)
        except UnicodeDecodeError as error:
            raise ValueError(f"trace {path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not shapes:
        raise ValueError(f"trace {path}: no request with a prompt")
    return shapes


def _read_shapes(
    path: Path, handle: IO[str], max_prompt_tokens: int, max_output_tokens: int, limit: int | None
) -> list[RequestShape]:
    """The rows of an open Azure-format trace as request shapes (at most `limit`)."""
    shapes: list[RequestShape] = []
    columns = ("ContextTokens", "GeneratedTokens")
    for line, row in csv_rows(handle, columns, f"trace {path}", " (Azure trace format expected)"):
        prompt, output = (_token_count(row[column], column, f"trace {path}, line {line}") for column in columns)
        if prompt < 0 or output < 0:
            # Found in review: -50 output tokens became 2, a negative prompt was dropped, without a word.
            raise ValueError(f"trace {path}, line {line}: ContextTokens/GeneratedTokens must be >= 0")
        if prompt < 1:
            continue
        shapes.append(RequestShape(min(prompt, max_prompt_tokens), min(max(output, 2), max_output_tokens)))
        if limit is not None and len(shapes) >= limit:
            break
    return shapes


def _token_count(cell: str | None, column: str, where: str) -> int:
    """One cell as a whole number of tokens, read strictly (gridshift.numerals) after the spaces around it (the
    file's layout); ValueError naming the file, line, column and cell otherwise. Found in review: int() read
    "1_000", "１２" and "١٢" (a check for "_" alone caught the first), and a short row was a TypeError traceback."""
    must = f"{where}: ContextTokens/GeneratedTokens must be integers"
    if cell is None:
        raise ValueError(f"{must}; {column} is missing (the row is short)")
    try:
        return plain_integer(cell.strip())
    except ValueError as reason:  # "not an integer", or "more than 4,300 digits"
        raise ValueError(f"{must}; {column} is {shown(cell)} ({reason})") from None


def cycle_shapes(shapes: Sequence[RequestShape]) -> Iterator[RequestShape]:
    """The trace's shapes in order, repeated."""
    return itertools.cycle(shapes)


class PromptMaker:
    """Prompts of a given length that differ between requests, so the server's prefix cache cannot
    serve one request's prefill from another's."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def token_ids(self, count: int) -> list[int]:
        low, high = PROMPT_TOKEN_ID_RANGE
        return [self._random.randrange(low, high) for _ in range(count)]

    def words(self, count: int) -> str:
        return " ".join(self._random.choice(PROMPT_WORDS) for _ in range(count))
