"""ENTSO-E Transparency Platform day-ahead prices (A44): parser, writer and feed adapter.

The parser reads `Publication_MarketDocument` (namespace ...publicationdocument:7:3): several
TimeSeries and Periods, PT15M/PT30M/PT60M resolutions, curveType A01 (every position) and A03
(a position repeating the previous price is omitted: filled forward to the Period's end), all in
UTC, so DST days are simply 23 or 25 hourly positions. When the same hours come at two
resolutions, one is kept (`ResolutionPreference`), never both; the other prices only what the kept
one leaves uncovered, a slot cut to those parts where it is partly covered. An `Acknowledgement_MarketDocument`
(ENTSO-E's "no data" answer, Reason 999) becomes NoPriceDataError with its reason.

Which auction: a zone may publish more than one day-ahead price. DE-LU and AT publish the SDAC
auction (gate closure 12:00 CET) as `classificationSequence_AttributeInstanceComponent.position` 1
and EXAA's separate 10:15 auction as position 2 (ENTSO-E's note on the zone, quoted in
EnergieID/entsoe-py#422 and #469); ES answers have carried intraday series
(`contract_MarketAgreement.type` A07) beside the day-ahead ones (A01, entsoe-py#446). Only the
configured sequence (SDAC's 1 by default) and day-ahead contracts are read; a series that names
neither is read as before. Found in review: both auctions at 15 minutes were refused as conflicting
prices, and with SDAC hourly the finer EXAA prices were taken instead.

The writer produces the same document shape from intervals, for the simulated world and tests.
"""

from __future__ import annotations

import bisect
import math
import xml.etree.ElementTree as ET
import xml.parsers.expat
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import httpx

from gridshift.api.regional_cluster import ENTSOE_SDAC_SEQUENCE, EntsoeFeed
from gridshift.numerals import plain_integer
from gridshift.signals.fields import finite_number, iso_time
from gridshift.signals.http import get_body
from gridshift.signals.prices import (
    NoPriceDataError,
    PriceDataError,
    PriceFetchError,
    PriceInterval,
    PriceKind,
    PriceSeries,
    floor_to,
    parse_iso_duration,
    parse_unit,
    validate_intervals,
    validated_series,
)
from gridshift.signals.settings import ConfiguredFeed, ResolutionPreference

PUBLICATION_NAMESPACE = "urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3"
DAY_AHEAD_DOCUMENT_TYPE = "A44"
CURVE_FULL = "A01"
CURVE_OMIT_REPEATS = "A03"
BUSINESS_TYPE_PRICE = "A62"
CONTRACT_DAY_AHEAD = "A01"
"""contract_MarketAgreement.type of a day-ahead series (A07 is intraday)."""
SDAC_SEQUENCE = ENTSOE_SDAC_SEQUENCE
PERIOD_FORMAT = "%Y%m%d%H%M"
"""periodStart/periodEnd query parameters: yyyyMMddHHmm, UTC."""
_XML_TIME = "%Y-%m-%dT%H:%MZ"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _q(name: str) -> str:
    return f"{{{PUBLICATION_NAMESPACE}}}{name}"


def _text(element: ET.Element, path: str, feed: str, field: str) -> str:
    found = element.find(path)
    if found is None or found.text is None or not found.text.strip():
        raise PriceDataError(feed, field, "missing")
    return found.text.strip()


class _Declared(Exception):
    """Raised from expat's handlers at the first DTD or entity declaration."""


def _refuse_declaration(*_: object) -> None:
    raise _Declared


def _reject_entity_declarations(body: bytes, feed: str) -> None:
    """Price documents never declare a DTD; refusing one keeps entity expansion out of the parse.

    Expat itself finds the declaration, before any entity is expanded, wherever it stands and in
    whatever encoding: a scan of the first 4 KiB of bytes was passed by a long comment before the
    DOCTYPE, or by a UTF-16 body, and expat's own amplification limit still let a 10 MiB body grow
    about a hundredfold (found in review, 3 December 2026)."""
    head = body[:4096].lower()  # the cheap look first (it also names a lowercase or misplaced one)
    if b"<!doctype" in head or b"<!entity" in head:
        raise PriceDataError(feed, "document", "declares a DTD or entities; refused")
    scanner = xml.parsers.expat.ParserCreate()
    scanner.StartDoctypeDeclHandler = _refuse_declaration
    scanner.EntityDeclHandler = _refuse_declaration
    try:
        scanner.Parse(body, True)
    except _Declared:
        raise PriceDataError(feed, "document", "declares a DTD or entities; refused") from None
    except xml.parsers.expat.ExpatError:
        return  # malformed: ElementTree's parse says where


def _acknowledgement_error(root: ET.Element, feed: str) -> NoPriceDataError:
    reasons = []
    for reason in root.iter():
        if _local(reason.tag) != "Reason":
            continue
        code = next((c.text or "" for c in reason if _local(c.tag) == "code"), "")
        text = next((c.text or "" for c in reason if _local(c.tag) == "text"), "")
        reasons.append(f"{code.strip()} {text.strip()!r}".strip())
    detail = "; ".join(reasons) or "no reason given"
    return NoPriceDataError(feed, "Reason", f"ENTSO-E acknowledged without data: {detail}")


@dataclass(frozen=True)
class _Slot:
    interval: PriceInterval
    origin: str


MAX_SLOTS = 100_000
"""Price slots one document may expand to: a year of 15-minute prices for two series is 70,272. An A03
period of one point stands for every slot of its timeInterval, so a 615-byte answer naming years at
PT1M expanded to millions of intervals (1 GiB at 4 years) before anything was checked."""


def _within_budget(slots: int, budget: int, feed: str, where: str, period: str) -> None:
    """Refuse a period that would expand to more slots than the document has left (MAX_SLOTS)."""
    if slots > budget:
        raise PriceDataError(
            feed, f"{where}.timeInterval", f"{slots} slots of {period} exceed the {MAX_SLOTS} a document may hold"
        )


def _parse_period(
    period: ET.Element,
    where: str,
    feed: str,
    curve: str,
    currency: str,
    series_unit_field: str,
    unit_text: str,
    budget: int = MAX_SLOTS,
) -> list[_Slot]:
    unit = parse_unit(feed, series_unit_field, unit_text)
    start = iso_time(
        feed,
        f"{where}.timeInterval.start",
        _text(period, f"{_q('timeInterval')}/{_q('start')}", feed, f"{where}.timeInterval.start"),
    )
    end = iso_time(
        feed,
        f"{where}.timeInterval.end",
        _text(period, f"{_q('timeInterval')}/{_q('end')}", feed, f"{where}.timeInterval.end"),
    )
    resolution_text = _text(period, _q("resolution"), feed, f"{where}.resolution")
    try:
        resolution = parse_iso_duration(resolution_text)
    except ValueError as error:
        raise PriceDataError(feed, f"{where}.resolution", str(error)) from error
    if end <= start:
        raise PriceDataError(feed, f"{where}.timeInterval.end", "not after timeInterval.start")
    if (end - start) % resolution:
        raise PriceDataError(
            feed, f"{where}.resolution", f"{resolution_text} does not divide the period {start:%H:%M}..{end:%H:%M}"
        )
    slots = (end - start) // resolution
    _within_budget(slots, budget, feed, where, f"{resolution_text} ({start:%Y-%m-%d %H:%M}..{end:%Y-%m-%d %H:%M})")
    prices: dict[int, float] = {}
    last_position = 0
    for index, point in enumerate(period.findall(_q("Point"))):
        point_where = f"{where}.Point[{index}]"
        position_text = _text(point, _q("position"), feed, f"{point_where}.position")
        amount_text = _text(point, _q("price.amount"), feed, f"{point_where}.price.amount")
        # Strictly, as every feed's numbers (gridshift.numerals): int() and float() read "1_0" as 10 and "１２" as 12.
        try:
            position = plain_integer(position_text)
        except ValueError as error:
            raise PriceDataError(feed, f"{point_where}.position", f"not an integer: {position_text!r}") from error
        amount = finite_number(feed, f"{point_where}.price.amount", amount_text)
        if not last_position < position <= slots:
            raise PriceDataError(
                feed,
                f"{point_where}.position",
                f"{position} is out of order or outside 1..{slots} ({slots} x {resolution_text})",
            )
        prices[position] = amount
        last_position = position
    if not prices:
        raise PriceDataError(feed, f"{where}.Point", "period has no points")
    if curve == CURVE_FULL:
        missing = [p for p in range(1, slots + 1) if p not in prices]
        if missing:
            raise PriceDataError(
                feed, f"{where}.Point", f"curveType A01 must list every position; missing {missing[:5]}"
            )
    elif 1 not in prices:
        raise PriceDataError(feed, f"{where}.Point", "curveType A03 must start at position 1")
    result = []
    price = math.nan
    for position in range(1, slots + 1):
        price = prices.get(position, price)  # A03: an omitted position repeats the previous price
        slot_start = start + (position - 1) * resolution
        interval = PriceInterval(slot_start, slot_start + resolution, price, currency, unit, PriceKind.ACTUAL)
        result.append(_Slot(interval, f"{where}.Point position {position}"))
    return result


@dataclass(frozen=True)
class _Piece:
    """What `_select` took of a published slot: all of it, or a part no preferred slot prices."""

    interval: PriceInterval
    slot: _Slot


def _gaps(interval: PriceInterval, overlapping: list[_Piece]) -> list[tuple[datetime, datetime]]:
    """The parts of `interval` that none of `overlapping` (sorted, not overlapping each other) covers."""
    gaps = []
    cursor = interval.start
    for piece in overlapping:
        if piece.interval.start > cursor:
            gaps.append((cursor, piece.interval.start))
        cursor = piece.interval.end
    if cursor < interval.end:
        gaps.append((cursor, interval.end))
    return gaps


def _refuse_conflict(slot: _Slot, overlapping: list[_Piece], feed: str) -> None:
    """Two slots of one resolution over the same time must be the same slot (a duplicate series)."""
    interval = slot.interval
    for piece in overlapping:
        clash = piece.slot
        if clash.interval.duration == interval.duration and clash.interval != interval:
            raise PriceDataError(
                feed,
                slot.origin,
                f"price {interval.price} for {interval.start:%Y-%m-%dT%H:%MZ} conflicts with "
                f"{clash.interval.price} at {clash.origin}",
            )


def _select(slots: list[_Slot], prefer: ResolutionPreference, feed: str) -> list[PriceInterval]:
    """One price per instant: preferred resolution first, others only where nothing was taken.

    A slot partly covered by those taken before keeps its price for the parts left uncovered, cut at
    their boundaries. Found in review: it was dropped whole, so an hour whose 15-minute prices covered
    only its second half had no price for its first half although the document priced it."""
    by_resolution: dict[timedelta, list[_Slot]] = {}
    for slot in slots:
        by_resolution.setdefault(slot.interval.duration, []).append(slot)
    order = sorted(by_resolution, reverse=prefer is ResolutionPreference.COARSEST)
    taken_starts: list[datetime] = []
    taken: list[_Piece] = []  # sorted by start, never overlapping
    for resolution in order:
        for slot in sorted(by_resolution[resolution], key=lambda s: s.interval.start):
            interval = slot.interval
            first = bisect.bisect_right(taken_starts, interval.start)
            if first and taken[first - 1].interval.end > interval.start:
                first -= 1
            last = bisect.bisect_left(taken_starts, interval.end)
            overlapping = taken[first:last]
            _refuse_conflict(slot, overlapping, feed)
            pieces = [_Piece(replace(interval, start=s, end=e), slot) for s, e in _gaps(interval, overlapping)]
            merged = sorted(overlapping + pieces, key=lambda p: p.interval.start)
            taken[first:last] = merged
            taken_starts[first:last] = [p.interval.start for p in merged]
    return [piece.interval for piece in taken]


def parse_a44(
    body: bytes | str,
    *,
    feed: str = "entsoe",
    expected_area_eic: str | None = None,
    prefer: ResolutionPreference = ResolutionPreference.FINEST,
    sequence: int = SDAC_SEQUENCE,
) -> list[PriceInterval]:
    """The priced intervals of an A44 document, sorted; PriceFeedError naming the field otherwise.

    Only day-ahead series of classificationSequence position `sequence` are read (module docstring)."""
    data = body.encode() if isinstance(body, str) else body
    if not data.strip():
        raise PriceDataError(feed, "document", "empty body")
    _reject_entity_declarations(data, feed)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as error:
        raise PriceDataError(feed, "document", f"malformed or truncated XML ({error})") from error
    if _local(root.tag) == "Acknowledgement_MarketDocument":
        raise _acknowledgement_error(root, feed)
    if _local(root.tag) != "Publication_MarketDocument":
        raise PriceDataError(feed, "document", f"root element is {_local(root.tag)}, not Publication_MarketDocument")
    if _namespace(root.tag) != PUBLICATION_NAMESPACE:
        raise PriceDataError(feed, "document", f"namespace {_namespace(root.tag)!r} is not {PUBLICATION_NAMESPACE!r}")
    document_type = _text(root, _q("type"), feed, "type")
    if document_type != DAY_AHEAD_DOCUMENT_TYPE:
        raise PriceDataError(feed, "type", f"document type {document_type} is not A44 (day-ahead prices)")
    all_series = root.findall(_q("TimeSeries"))
    if not all_series:
        raise PriceDataError(feed, "TimeSeries", "document holds no TimeSeries")
    slots: list[_Slot] = []
    skipped: list[str] = []
    for series_index, series in enumerate(all_series):
        where = f"TimeSeries[{series_index}]"
        other = _other_auction(series, where, feed, sequence)
        if other is not None:
            skipped.append(other)
            continue
        for domain in ("in_Domain.mRID", "out_Domain.mRID"):
            area = _text(series, _q(domain), feed, f"{where}.{domain}")
            if expected_area_eic is not None and area != expected_area_eic:
                raise PriceDataError(
                    feed, f"{where}.{domain}", f"document is for bidding zone {area}, requested {expected_area_eic}"
                )
        currency = _text(series, _q("currency_Unit.name"), feed, f"{where}.currency_Unit.name")
        unit_text = _text(series, _q("price_Measure_Unit.name"), feed, f"{where}.price_Measure_Unit.name")
        curve_element = series.find(_q("curveType"))
        curve = (curve_element.text or "").strip() if curve_element is not None else CURVE_FULL
        if curve not in (CURVE_FULL, CURVE_OMIT_REPEATS):
            raise PriceDataError(feed, f"{where}.curveType", f"{curve!r} is neither A01 nor A03")
        periods = series.findall(_q("Period"))
        if not periods:
            raise PriceDataError(feed, f"{where}.Period", "TimeSeries has no Period")
        for period_index, period in enumerate(periods):
            slots += _parse_period(
                period,
                f"{where}.Period[{period_index}]",
                feed,
                curve,
                currency,
                f"{where}.price_Measure_Unit.name",
                unit_text,
                MAX_SLOTS - len(slots),
            )
    if not slots:
        # Naming the feed's sequence helps only where another auction's position is what the document holds.
        hint = (
            " (set the feed's sequence to read another auction)"
            if any(s.startswith("classificationSequence") for s in skipped)
            else ""
        )
        raise NoPriceDataError(
            feed,
            "TimeSeries",
            f"no day-ahead series at classificationSequence position {sequence}; the document holds "
            f"{', '.join(sorted(set(skipped)))}{hint}",
        )
    return _select(slots, prefer, feed)


def _other_auction(series: ET.Element, where: str, feed: str, sequence: int) -> str | None:
    """What makes `series` another auction than the one read (None: it is read)."""
    contract = series.find(_q("contract_MarketAgreement.type"))
    contract_type = "" if contract is None else (contract.text or "").strip()
    if contract_type not in ("", CONTRACT_DAY_AHEAD):
        return f"contract_MarketAgreement.type {contract_type}"
    position = series.find(_q("classificationSequence_AttributeInstanceComponent.position"))
    text = "" if position is None else (position.text or "").strip()
    if not text:
        return None
    try:
        found = plain_integer(text)
    except ValueError as error:
        raise PriceDataError(
            feed, f"{where}.classificationSequence_AttributeInstanceComponent.position", f"not an integer: {text!r}"
        ) from error
    return None if found == sequence else f"classificationSequence position {found}"


def _format_price(price: float) -> str:
    return str(int(price)) if price.is_integer() else repr(price)


def write_a44(
    intervals: Sequence[PriceInterval],
    *,
    area_eic: str,
    created_at: datetime,
    curve_type: str = CURVE_OMIT_REPEATS,
    document_mrid: str = "gridshift-simulated",
) -> str:
    """An A44 Publication_MarketDocument holding `intervals` (one TimeSeries per contiguous run of
    one resolution), as the Transparency Platform would publish it."""
    if curve_type not in (CURVE_FULL, CURVE_OMIT_REPEATS):
        raise ValueError(f"curve_type must be A01 or A03, not {curve_type!r}")
    checked = validate_intervals("writer", intervals, expected_currency=intervals[0].currency if intervals else "")
    runs: list[list[PriceInterval]] = []
    for interval in checked:
        if interval.unit != checked[0].unit:
            raise ValueError(f"all intervals must share one unit; {interval.unit} differs from {checked[0].unit}")
        if runs and runs[-1][-1].end == interval.start and runs[-1][-1].duration == interval.duration:
            runs[-1].append(interval)
        else:
            runs.append([interval])

    ET.register_namespace("", PUBLICATION_NAMESPACE)
    root = ET.Element(_q("Publication_MarketDocument"))

    def add(parent: ET.Element, name: str, text: str | None = None, **attributes: str) -> ET.Element:
        element = ET.SubElement(parent, _q(name), attributes)
        if text is not None:
            element.text = text
        return element

    add(root, "mRID", document_mrid)
    add(root, "revisionNumber", "1")
    add(root, "type", DAY_AHEAD_DOCUMENT_TYPE)
    add(root, "sender_MarketParticipant.mRID", "10X1001A1001A450", codingScheme="A01")
    add(root, "sender_MarketParticipant.marketRole.type", "A32")
    add(root, "receiver_MarketParticipant.mRID", "10X1001A1001A450", codingScheme="A01")
    add(root, "receiver_MarketParticipant.marketRole.type", "A33")
    add(root, "createdDateTime", created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    document_interval = add(root, "period.timeInterval")
    add(document_interval, "start", checked[0].start.astimezone(UTC).strftime(_XML_TIME))
    add(document_interval, "end", checked[-1].end.astimezone(UTC).strftime(_XML_TIME))
    for number, run in enumerate(runs, start=1):
        series = add(root, "TimeSeries")
        add(series, "mRID", str(number))
        add(series, "auction.type", "A01")
        add(series, "businessType", BUSINESS_TYPE_PRICE)
        add(series, "in_Domain.mRID", area_eic, codingScheme="A01")
        add(series, "out_Domain.mRID", area_eic, codingScheme="A01")
        add(series, "contract_MarketAgreement.type", "A01")
        add(series, "currency_Unit.name", run[0].currency)
        add(series, "price_Measure_Unit.name", run[0].unit.value.upper())
        add(series, "curveType", curve_type)
        period = add(series, "Period")
        period_interval = add(period, "timeInterval")
        add(period_interval, "start", run[0].start.astimezone(UTC).strftime(_XML_TIME))
        add(period_interval, "end", run[-1].end.astimezone(UTC).strftime(_XML_TIME))
        add(period, "resolution", run[0].resolution)
        previous: float | None = None
        for position, interval in enumerate(run, start=1):
            if curve_type == CURVE_OMIT_REPEATS and previous is not None and interval.price == previous:
                continue
            point = add(period, "Point")
            add(point, "position", str(position))
            add(point, "price.amount", _format_price(interval.price))
            previous = interval.price
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


@dataclass(eq=False, kw_only=True)
class EntsoePriceFeed(ConfiguredFeed[EntsoeFeed]):
    """Fetches day-ahead prices of one bidding zone from the Transparency Platform REST API."""

    token: str = field(repr=False)
    """The securityToken, from a Secret: never in a repr."""
    currency: str
    http: httpx.Client = field(repr=False)

    def request_params(self, now: datetime) -> dict[str, str]:
        """Query parameters for the window around `now` (token included)."""
        hour = floor_to(now, timedelta(hours=1))
        start = hour - timedelta(hours=self.settings.lookback_hours)
        end = hour + timedelta(hours=self.settings.horizon_hours)
        return {
            "securityToken": self.token,
            "documentType": DAY_AHEAD_DOCUMENT_TYPE,
            "in_Domain": self.spec.area_eic,
            "out_Domain": self.spec.area_eic,
            "periodStart": start.astimezone(UTC).strftime(PERIOD_FORMAT),
            "periodEnd": end.astimezone(UTC).strftime(PERIOD_FORMAT),
        }

    def fetch(self, now: datetime) -> PriceSeries:
        status, body = get_body(
            self.http,
            self.name,
            self.spec.endpoint,
            params=self.request_params(now),
            timeout_seconds=self.settings.http_timeout_seconds,
            max_body_bytes=self.settings.max_body_bytes,
            # ENTSO-E explains a 400 in an Acknowledgement document; parse it for the reason.
            pass_statuses=frozenset({400}),
        )
        intervals = parse_a44(
            body,
            feed=self.name,
            expected_area_eic=self.spec.area_eic,
            prefer=self.settings.prefer_resolution,
            sequence=self.spec.sequence,
        )
        if status == 400:
            raise PriceFetchError(self.name, "http.status", "HTTP 400 with a price document", retryable=False)
        return validated_series(self.name, intervals, self.currency, now)
