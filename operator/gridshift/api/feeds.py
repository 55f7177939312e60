"""What the electricity price feed and the carbon-intensity feed of a RegionalCluster share.

Both are a `type` naming one settings block, fetched every `refreshSeconds` and stale after
`staleAfterSeconds` without a good fetch (a stale figure never moves a replica); both can replay a
recorded CSV, call a public API at an overridable endpoint, or read a Prometheus query. The rules and
field types here are written once for both specs (gridshift.api.regional_cluster, gridshift.api.carbon).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field

from gridshift.api.base import CrossFieldRule
from gridshift.api.common import PROMETHEUS_CREDENTIAL, HttpUrl, credential_query_rule

ApiEndpoint = Annotated[
    HttpUrl, Field(description="API base URL (override for a mirror or a test server); no user:password@.")
]
PrometheusUrl = Annotated[
    HttpUrl, Field(description="Prometheus base URL; no user:password@, no credential in the query string.")
]
PROMETHEUS_URL_RULE = credential_query_rule("url", PROMETHEUS_CREDENTIAL)
"""The rule of a Prometheus feed's settings (price and carbon): no credential in the url's query string."""
TIME_ZONE_PATTERN = r"^[A-Za-z][-+A-Za-z0-9_]*(/[A-Za-z0-9][-+A-Za-z0-9_]*)*$"
"""The shape of an IANA zone name; the tz database itself: KNOWN_ZONE_RULE at admission, known_time_zone here."""
KNOWN_ZONE_RULE = {
    # CEL's timestamp accessors take a zone name and fail on one the apiserver's tz database does not know
    # (found in review: `Mars/Olympus` was admitted, and only the operator refused the RegionalCluster, in its
    # status). The apiserver's database (Go's) and the operator's (Python's) are both the IANA one; a zone only
    # one of them knows is refused at admission or named InvalidSpec by the operator, as before. Go reads
    # `Local` as the apiserver's own zone, not a tz name (found in review: admitted, then refused by the
    # operator as InvalidSpec), so it is refused by name.
    "rule": "self != 'Local' && timestamp('2000-01-01T00:00:00Z').getHours(self) >= 0",
    "message": (
        "not an IANA time zone the apiserver knows (e.g. Europe/Paris, America/Los_Angeles, UTC; 'Local' is not one)"
    ),
}


def known_time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Paris, America/Los_Angeles, UTC)") from None
    return name


TimeZoneName = Annotated[
    str,
    # The apiserver checks the shape and, by CEL, that its tz database knows the zone; pydantic (and
    # `gridshift validate`) consult Python's: a zone only the apiserver knows makes the operator refuse the
    # whole RegionalCluster, named in its own status (Ready False, InvalidSpec, this field).
    Field(
        min_length=1,
        max_length=64,
        pattern=TIME_ZONE_PATTERN,
        json_schema_extra={"x-kubernetes-validations": [KNOWN_ZONE_RULE]},
    ),
    AfterValidator(known_time_zone),
]


def csv_timezone_field(example: str) -> Any:
    """csvReplay's `timezone`: whose local time a recording's naive timestamps are."""
    return Field(
        default=None,
        description=(
            "IANA time zone of the file's timestamps when they carry no UTC offset (required then, unless the "
            f"time column's header says UTC, as 'Datetime (UTC)' does): e.g. {example}, UTC for naive UTC ones. "
            "Local times that do not exist (the spring-forward hour) are skipped."
        ),
    )


CsvPath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1024,
        description="CSV file path inside the operator container (read once, capped in size).",
    ),
]
OffsetDays = Annotated[
    int,
    Field(ge=-36_500, le=36_500, description="Shift the recording by this many days (at most 100 years either way)."),
]


def settings_block_rule(feed_types: type[StrEnum], example: str) -> CrossFieldRule:
    """A feed spec's rule: the settings block named by `type` is set (the block's wire name is the type's value)."""

    def holds(feed: Any) -> bool:
        by_wire_name = {info.alias or name: name for name, info in type(feed).model_fields.items()}
        return getattr(feed, by_wire_name[feed.type.value]) is not None

    return CrossFieldRule(
        cel=" || ".join(f"(self.type == '{t.value}' && has(self.{t.value}))" for t in feed_types),
        message=f"the settings block named by type must be set (e.g. type: {example} needs {example}: {{...}})",
        field="type",
        holds=holds,
    )


def refresh_rule(goes_stale: str) -> CrossFieldRule:
    """A feed spec's rule: a feed fetched as configured is never stale between two good fetches."""
    return CrossFieldRule(
        cel="self.staleAfterSeconds > self.refreshSeconds",
        message=f"staleAfterSeconds must exceed refreshSeconds, or {goes_stale} stale between good fetches",
        field="staleAfterSeconds",
        holds=lambda s: s.stale_after_seconds > s.refresh_seconds,
    )


def stale_after_field(when_stale: str) -> Any:
    """`staleAfterSeconds`: two hours by default, a minute to a week."""
    return Field(
        default=7200,
        ge=60,
        le=604_800,
        description=f"After this long without a good fetch {when_stale}.",
    )


def refresh_field(description: str) -> Any:
    """`refreshSeconds`: a quarter of an hour by default, 10 s to a day."""
    return Field(default=900, ge=10, le=86_400, description=description)
