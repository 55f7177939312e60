"""Reading a CSV file a user hands in (a power trace, a request trace): how it is opened and how its rows come.

Owns what such files share: a BOM (a file saved by Excel) is not part of the header, a header lacking a column
the reader needs is refused naming every one missing, and each row comes with its physical line, so that an
error names the line an editor shows. Below every other module (with `modes` and `arrays`): the adapters that
read such files (`nvml`, `profiling`) may not import each other.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO


def open_csv(path: Path) -> IO[str]:
    """`path` opened for the csv module; OSError as `Path.open` raises it, UnicodeDecodeError as the rows are read."""
    # utf-8-sig: a BOM (a file saved by Excel) is not part of the header (review).
    return path.open(newline="", encoding="utf-8-sig")


def csv_rows(
    handle: IO[str], required: Iterable[str], where: str, expected: str = ""
) -> Iterator[tuple[int, dict[str, str | None]]]:
    """Each row of a CSV with a header, as its physical line and its cells by column (None where the row is
    short); ValueError `<where>: missing column(s) [...]<expected>` when the header lacks a `required` one."""
    reader = csv.DictReader(handle)
    missing = set(required) - set(reader.fieldnames or ())
    if missing:
        raise ValueError(f"{where}: missing column(s) {sorted(missing)}{expected}")
    for row in reader:
        yield reader.line_num, row  # the physical line: blank lines and quoted newlines counted
