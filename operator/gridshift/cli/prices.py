"""`gridshift prices`: fetch or read one price feed document and print the parsed series."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gridshift.cli.usage import finite_float, plain_int


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "prices",
        help="parse an ENTSO-E A44 document or a price CSV (file or URL) and print the series",
        description=(
            "Read one electricity price source and print its intervals as published (currency and unit "
            "unchanged). SOURCE is a file path or an http(s) URL."
        ),
    )
    parser.add_argument("source", metavar="SOURCE", help="file path or URL of an ENTSO-E XML document or a price CSV")
    parser.add_argument(
        "--format",
        choices=("entsoe", "csv"),
        default=None,
        help="document format (default: guessed from the name, then from the content)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--column", default=None, help="column of a wide CSV to read (e.g. DE-LU_EUR_per_MWh)")
    parser.add_argument(
        "--timezone",
        default=None,
        metavar="ZONE",
        help=(
            "IANA time zone of a CSV's timestamps without a UTC offset, e.g. Europe/Paris for the EU per-market "
            "files of prices-2024 (required when the CSV has any; UTC if they are UTC)"
        ),
    )
    parser.add_argument(
        "--sequence",
        type=plain_int,
        default=None,
        metavar="N",
        help=(
            "ENTSO-E classificationSequence position to read where a zone publishes several day-ahead auctions "
            "(DE-LU, AT: 1 is SDAC, the default; 2 is EXAA)"
        ),
    )
    parser.add_argument(
        "--timeout", type=finite_float, default=10.0, help="seconds to wait for a URL to answer (default: 10)"
    )
    parser.set_defaults(handler=run)


def _read_source(source: str, timeout_seconds: float) -> tuple[bytes, str]:
    from gridshift.cli.usage import UsageError

    scheme = source.split("://", 1)[0].lower() if "://" in source else None
    if scheme in ("http", "https"):
        import httpx

        from gridshift.redaction import display_url
        from gridshift.signals.http import feed_http_client, get_body, remember_url_secrets
        from gridshift.signals.prices import PriceFeedError

        try:
            url = httpx.URL(source)
        except httpx.InvalidURL:
            raise UsageError(f"not a valid URL: {display_url(source)}") from None
        # The feed is named without the query string and user:password@ (found in review: a password was
        # echoed): either may hold a credential, and errors and the table's title name the feed.
        name = display_url(url.copy_with(query=None))
        # The server's answer may echo them, and errors quote its content: `run` redacts its errors of them.
        remember_url_secrets(source)
        try:
            with feed_http_client() as client:
                _, body = get_body(
                    client, name, source, timeout_seconds=timeout_seconds, max_body_bytes=64 * 1024 * 1024
                )
        except PriceFeedError as error:
            raise UsageError(str(error)) from error
        return body, name
    if scheme is not None:
        raise UsageError(f"cannot read {_shown(source)}: only http:// and https:// URLs, or a file")
    path = Path(source)
    try:
        return path.read_bytes(), path.name
    except OSError as error:
        raise UsageError(f"cannot read {_shown(source)}: {error.strerror}") from error


def _shown(source: str) -> str:
    """A source as an error may show it: without a query string, which may hold a token, whatever the
    source looks like (a URL of another scheme, a URL with a slash missing, a host without a scheme: each
    is read as a file name), and without a URL's user:password@. Found in review: both errors above echoed
    `?securityToken=...`; and a URL without a query was shown as given, so `ftp://ops:<password>@host/x.csv`
    ("only http:// and https:// URLs") showed the password."""
    from gridshift.redaction import display_url

    head, _, query = source.partition("?")
    if "://" in head:
        return display_url(source)
    return f"{head}?<query omitted>" if query else source


def _naive_timezone(name: str, text: str, timezone: str | None) -> str | None:
    """Whose local time a CSV's timestamps are (None: they carry offsets): `timezone`, required when they
    carry none, as `simulate --prices-timezone`. Found in review: the EU per-market files (French local
    time) were printed under "start (UTC)" an hour or two off."""
    from gridshift.cli.usage import UsageError
    from gridshift.simulation.data import SimulationInputError, check_timezone, local_timezone

    try:
        check_timezone(timezone, "--timezone")
        return local_timezone(text, name, timezone, "--timezone")
    except SimulationInputError as error:
        raise UsageError(str(error)) from None


def _guess_format(name: str, body: bytes) -> str:
    lowered = name.lower()
    if lowered.endswith(".xml"):
        return "entsoe"
    if lowered.endswith(".csv"):
        return "csv"
    return "entsoe" if body.lstrip().startswith(b"<") else "csv"


def run(args: argparse.Namespace) -> int:
    """Print the source's series; a UsageError's text redacted of the secrets a URL source carries (found in
    review: a CSV row echoing the path it was asked was quoted by its parse error, `?securityToken=...` whole)."""
    from gridshift.cli.usage import UsageError
    from gridshift.redaction import redact

    try:
        return _print_series(args)
    except UsageError as error:
        raise UsageError(redact(str(error))) from None


def _print_series(args: argparse.Namespace) -> int:
    from gridshift.api.regional_cluster import ENTSOE_MAX_SEQUENCE
    from gridshift.cli.usage import UsageError
    from gridshift.signals.entsoe import SDAC_SEQUENCE, parse_a44
    from gridshift.signals.price_csv import parse_price_csv
    from gridshift.signals.prices import PriceFeedError, PriceInterval

    if not 0 < args.timeout <= 3600:
        raise UsageError(f"--timeout must be within (0, 3600] seconds, got {args.timeout:g}")
    body, name = _read_source(args.source, args.timeout)
    document_format = args.format or _guess_format(name, body)
    if args.column is not None and document_format != "csv":
        raise UsageError("--column applies to CSV sources only")
    if args.sequence is not None and document_format != "entsoe":
        raise UsageError("--sequence applies to ENTSO-E documents only")
    if args.sequence is not None and not 1 <= args.sequence <= ENTSOE_MAX_SEQUENCE:
        raise UsageError(
            f"--sequence must be within 1..{ENTSOE_MAX_SEQUENCE} (a classificationSequence position), "
            f"got {args.sequence}"
        )
    if args.timezone is not None and document_format != "csv":
        raise UsageError("--timezone applies to CSV sources only (an ENTSO-E document's times are UTC)")
    intervals: list[PriceInterval]
    try:
        if document_format == "entsoe":
            intervals = parse_a44(body, feed=name, sequence=args.sequence or SDAC_SEQUENCE)
        else:
            text = body.decode("utf-8-sig")
            zone = _naive_timezone(name, text, args.timezone)
            # Read as the operator's csvReplay reads it (signals.recorded): a row at a local time that does
            # not exist (the spring-forward hour the EU per-market files write) priced no time and is left
            # out; the fall-back hour may stand twice (found in review: a file writing it twice was refused
            # here and by simulate --prices, while the operator took it). Written once, as the EU per-market
            # files do, its second occurrence is an hour without a price (it was shown as a 2-hour row).
            intervals = parse_price_csv(
                text, feed=name, column=args.column, naive_timezone=UTC if zone is None else ZoneInfo(zone)
            )
    except PriceFeedError as error:
        raise UsageError(str(error)) from error
    except UnicodeDecodeError as error:
        raise UsageError(f"{name}: not UTF-8 text ({error.reason})") from error

    if args.json:
        rows = [
            {
                "start": interval.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": interval.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "price": interval.price,
                "currency": interval.currency,
                "unit": interval.unit.value,
                "resolution": interval.resolution,
            }
            for interval in intervals
        ]
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{name}: {len(intervals)} intervals", title_justify="left")
    for column, justify in (("start (UTC)", "left"), ("end (UTC)", "left"), ("resolution", "left"), ("price", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for interval in intervals:
        table.add_row(
            interval.start.strftime("%Y-%m-%d %H:%M"),
            interval.end.strftime("%Y-%m-%d %H:%M"),
            interval.resolution,
            f"{interval.price:g} {interval.currency}/{interval.unit.value}",
        )
    Console().print(table)
    return 0
