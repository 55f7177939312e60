"""The A44 parser against recorded and derived ENTSO-E documents, and the writer round trip.

Expected prices below were read by hand from the XML files in tests/fixtures/signals/entsoe.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridshift.api.regional_cluster import EnergyUnit
from gridshift.signals.entsoe import parse_a44, write_a44
from gridshift.signals.prices import NoPriceDataError, PriceDataError, PriceInterval, PriceKind
from gridshift.signals.settings import ResolutionPreference
from tests.signals.conftest import ENTSOE_FIXTURES

BE = "10YBE----------2"
HOURLY = ENTSOE_FIXTURES / "hass-entso-e_BE_60M_2024-10-08.xml"
MIX = ENTSOE_FIXTURES / "hass-entso-e_BE_60M_15M_mix_2024-10-06_possibly-edited.xml"
SPRING = ENTSOE_FIXTURES / "derived_BE_60M_DST_23h_2024-03-31.xml"
AUTUMN = ENTSOE_FIXTURES / "derived_BE_60M_DST_25h_2024-10-27.xml"
OVERLAP = ENTSOE_FIXTURES / "derived_BE_15M_and_60M_same_day_2024-10-06.xml"
ACK = ENTSOE_FIXTURES / "crafted_acknowledgement_999_no_data.xml"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def price_at(intervals: list[PriceInterval], instant: str) -> float:
    matches = [i for i in intervals if i.start <= utc(instant) < i.end]
    assert len(matches) == 1, f"{len(matches)} intervals hold {instant}"
    return matches[0].price


def assert_contiguous(intervals: list[PriceInterval]) -> None:
    for earlier, later in itertools.pairwise(intervals):
        assert earlier.end == later.start


def test_hourly_document_gives_24_hourly_prices_in_eur_per_mwh() -> None:
    intervals = parse_a44(HOURLY.read_bytes(), expected_area_eic=BE)
    assert len(intervals) == 24
    assert intervals[0].start == utc("2024-10-07T22:00")
    assert intervals[-1].end == utc("2024-10-08T22:00")
    assert {i.resolution for i in intervals} == {"PT60M"}
    assert {(i.currency, i.unit) for i in intervals} == {("EUR", EnergyUnit.MWH)}
    assert_contiguous(intervals)
    assert price_at(intervals, "2024-10-07T22:00") == 64.98  # position 1
    assert price_at(intervals, "2024-10-08T06:00") == 100  # position 9
    assert price_at(intervals, "2024-10-08T17:00") == 115.47  # position 20
    assert price_at(intervals, "2024-10-08T21:00") == 50  # position 24


def test_mixed_document_fills_a03_gaps_forward_to_each_period_end() -> None:
    intervals = parse_a44(MIX.read_bytes(), expected_area_eic=BE)
    assert len(intervals) == 96 + 96 + 24
    assert_contiguous(intervals)
    # Period 1 (PT15M from 2024-10-05T22:00Z): position 1 = 55.35, positions 2-4 omitted.
    assert price_at(intervals, "2024-10-05T22:00") == 55.35
    assert price_at(intervals, "2024-10-05T22:45") == 55.35  # position 4, filled
    assert price_at(intervals, "2024-10-05T23:00") == 44.22  # position 5
    # Positions 53..60 are one value (-0.01, a negative price) across two hours: 54-60 omitted.
    assert price_at(intervals, "2024-10-06T11:00") == -0.01  # position 53
    assert price_at(intervals, "2024-10-06T12:45") == -0.01  # position 60, filled
    assert price_at(intervals, "2024-10-06T13:00") == 0.2  # position 61
    # The last point is position 93: 94-96 are filled to the period end.
    assert price_at(intervals, "2024-10-06T21:00") == 52.33
    assert price_at(intervals, "2024-10-06T21:45") == 52.33
    # Period 2 position 73 and period 3 (PT60M) position 20.
    assert price_at(intervals, "2024-10-07T16:00") == 159.2
    assert price_at(intervals, "2024-10-08T17:00") == 115.47
    assert [i.resolution for i in intervals[190:194]] == ["PT15M", "PT15M", "PT60M", "PT60M"]


def test_spring_dst_day_has_23_hourly_utc_intervals() -> None:
    intervals = parse_a44(SPRING.read_bytes(), expected_area_eic=BE)
    assert len(intervals) == 23
    assert intervals[0].start == utc("2024-03-30T23:00")  # 00:00 CET
    assert intervals[-1].end == utc("2024-03-31T22:00")  # 24:00 CEST
    assert_contiguous(intervals)
    assert price_at(intervals, "2024-03-31T01:00") == 52.68  # position 3
    assert price_at(intervals, "2024-03-31T06:00") == 70  # position 8, omitted: repeats position 7
    assert price_at(intervals, "2024-03-31T21:00") == 50.29  # position 23


def test_autumn_dst_day_has_25_hourly_utc_intervals() -> None:
    intervals = parse_a44(AUTUMN.read_bytes(), expected_area_eic=BE)
    assert len(intervals) == 25
    assert intervals[0].start == utc("2024-10-26T22:00")  # 00:00 CEST
    assert intervals[-1].end == utc("2024-10-27T23:00")  # 24:00 CET
    assert_contiguous(intervals)
    assert price_at(intervals, "2024-10-27T01:00") == 81.33  # position 4, omitted: repeats position 3
    assert price_at(intervals, "2024-10-27T02:00") == 67.95  # position 5
    assert price_at(intervals, "2024-10-27T22:00") == 102.99  # position 25


@pytest.mark.parametrize(
    ("preference", "resolution", "count"),
    [(ResolutionPreference.FINEST, "PT15M", 96), (ResolutionPreference.COARSEST, "PT60M", 24)],
)
def test_same_day_at_two_resolutions_keeps_one_never_both(
    preference: ResolutionPreference, resolution: str, count: int
) -> None:
    intervals = parse_a44(OVERLAP.read_bytes(), expected_area_eic=BE, prefer=preference)
    assert len(intervals) == count
    assert {i.resolution for i in intervals} == {resolution}
    assert intervals[0].start == utc("2024-10-05T22:00")
    assert intervals[-1].end == utc("2024-10-06T22:00")
    assert_contiguous(intervals)
    assert price_at(intervals, "2024-10-06T12:00") == -0.01


def test_acknowledgement_becomes_no_data_error_with_reason() -> None:
    with pytest.raises(NoPriceDataError) as caught:
        parse_a44(ACK.read_bytes(), feed="eu-be")
    assert caught.value.field == "Reason"
    assert "999" in str(caught.value) and "No matching data found" in str(caught.value)
    assert "eu-be" in str(caught.value)


def test_wrong_bidding_zone_is_refused() -> None:
    with pytest.raises(PriceDataError, match=r"TimeSeries\[0\]\.in_Domain\.mRID.*10YBE----------2.*10YNL"):
        parse_a44(HOURLY.read_bytes(), expected_area_eic="10YNL----------L")


def _edit(old: str, new: str, source: str = HOURLY.read_text(), count: int = 1) -> str:
    assert old in source
    return source.replace(old, new, count)


def _without_position_2() -> str:
    text = HOURLY.read_text()
    start = text.index("<Point>", text.index("<position>1</position>"))
    end = text.index("</Point>", start) + len("</Point>")
    assert "<position>2</position>" in text[start:end]
    return text[:start] + text[end:]


@pytest.mark.parametrize(
    ("document", "field", "message"),
    [
        (b"", "document", "empty"),
        (HOURLY.read_bytes()[:2000], "document", "malformed or truncated XML"),
        (_edit("publicationdocument:7:3", "publicationdocument:6:0"), "document", "namespace"),
        (_edit("<type>A44</type>", "<type>A65</type>"), "type", "not A44"),
        (_edit("<currency_Unit.name>EUR</currency_Unit.name>", ""), "TimeSeries[0].currency_Unit.name", "missing"),
        (_edit(">MWH<", ">GWH<"), "TimeSeries[0].price_Measure_Unit.name", "unknown energy unit"),
        (
            _edit("<price.amount>100</price.amount>", "<price.amount>NaN</price.amount>"),
            "Point[8].price.amount",
            "not a finite",
        ),
        (
            _edit("<price.amount>100</price.amount>", "<price.amount>inf</price.amount>"),
            "Point[8].price.amount",
            "not a finite",
        ),
        (
            _edit("<price.amount>100</price.amount>", "<price.amount>1OO</price.amount>"),
            "Point[8].price.amount",
            "not a number",
        ),
        (_edit("<position>24</position>", "<position>25</position>"), "Point[23].position", "outside 1..24"),
        (_edit("<position>10</position>", "<position>8</position>"), "Point[9].position", "out of order"),
        (
            _edit("<resolution>PT60M</resolution>", "<resolution>PT7M</resolution>"),
            "Period[0].resolution",
            "does not divide",
        ),
        (
            _edit("<curveType>A03</curveType>", "<curveType>A01</curveType>", _without_position_2()),
            "Period[0].Point",
            "A01 must list every position",
        ),
        (_edit("<curveType>A03</curveType>", "<curveType>A99</curveType>"), "TimeSeries[0].curveType", "A99"),
        (
            _edit(
                "<start>2024-10-07T22:00Z</start>\n              <end>2024-10-08T22:00Z</end>",
                "<start>2024-10-07T22:00</start>\n              <end>2024-10-08T22:00Z</end>",
            ),
            "Period[0].timeInterval.start",
            "without a UTC offset",
        ),
        (b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", "document", "DTD"),
        (
            b'<Publication_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3">'
            b"<type>A44</type></Publication_MarketDocument>",
            "TimeSeries",
            "no TimeSeries",
        ),
        (b"<html><body>Service Unavailable</body></html>", "document", "not Publication_MarketDocument"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 40 else None,
)
def test_malformed_documents_are_refused_naming_the_field(document: str | bytes, field: str, message: str) -> None:
    with pytest.raises(PriceDataError) as caught:
        parse_a44(document, feed="eu-be", expected_area_eic=BE)
    assert field in caught.value.field
    assert message in caught.value.detail
    assert str(caught.value).startswith("price feed 'eu-be': ")


def test_a_period_that_would_expand_to_millions_of_slots_is_refused_before_it_is_expanded() -> None:
    # 700 bytes: one A03 point standing for every minute of four years (2.1 million intervals, 1 GiB).
    body = _edit(
        "<start>2024-10-07T22:00Z</start>\n              <end>2024-10-08T22:00Z</end>",
        "<start>2024-01-01T00:00Z</start>\n              <end>2028-01-01T00:00Z</end>",
    ).replace("<resolution>PT60M</resolution>", "<resolution>PT1M</resolution>")
    with pytest.raises(PriceDataError) as caught:
        parse_a44(body, feed="eu-be", expected_area_eic=BE)
    assert caught.value.field == "TimeSeries[0].Period[0].timeInterval"
    assert "2103840 slots of PT1M" in caught.value.detail and "100000" in caught.value.detail
    assert str(caught.value).startswith("price feed 'eu-be': ")


def test_two_series_with_conflicting_prices_for_the_same_hour_are_refused() -> None:
    text = HOURLY.read_text()
    series = text[text.index("      <TimeSeries>") : text.index("</TimeSeries>") + len("</TimeSeries>")]
    conflicting = series.replace("<price.amount>100</price.amount>", "<price.amount>101</price.amount>")
    with pytest.raises(PriceDataError, match="conflicts with"):
        parse_a44(text.replace(series, series + "\n" + conflicting), expected_area_eic=BE)
    # The same series twice is a duplicate, not a conflict.
    assert len(parse_a44(text.replace(series, series + "\n" + series), expected_area_eic=BE)) == 24


# --- which auction: classificationSequence and contract type ---------------------------------------

DE_LU = "10Y1001A1001A82H"
# 29 October 2025 (CET), the first hour of each auction as the Transparency Platform's page showed them
# (EnergieID/entsoe-py#469): SDAC ("Sequence 1") and EXAA's 10:15 auction ("Sequence 2").
SDAC_15M = [65.83, 62.10, 55.90, 51.38]
EXAA_15M = [64.80, 62.74, 50.00, 44.20]


def _de_lu_series(resolution: str, prices: list[float], sequence: int | None, contract: str = "A01") -> str:
    points = "".join(
        f"<Point><position>{i + 1}</position><price.amount>{p}</price.amount></Point>" for i, p in enumerate(prices)
    )
    position = (
        ""
        if sequence is None
        else f"<classificationSequence_AttributeInstanceComponent.position>{sequence}"
        "</classificationSequence_AttributeInstanceComponent.position>"
    )
    # Element order as the platform writes it: contract type before currency, position after curveType.
    return (
        "<TimeSeries><mRID>1</mRID><auction.type>A01</auction.type><businessType>A62</businessType>"
        f'<in_Domain.mRID codingScheme="A01">{DE_LU}</in_Domain.mRID>'
        f'<out_Domain.mRID codingScheme="A01">{DE_LU}</out_Domain.mRID>'
        f"<contract_MarketAgreement.type>{contract}</contract_MarketAgreement.type>"
        "<currency_Unit.name>EUR</currency_Unit.name><price_Measure_Unit.name>MWH</price_Measure_Unit.name>"
        f"<curveType>A03</curveType>{position}<Period><timeInterval><start>2025-10-28T23:00Z</start>"
        f"<end>2025-10-29T00:00Z</end></timeInterval><resolution>{resolution}</resolution>{points}</Period>"
        "</TimeSeries>"
    )


def _de_lu_document(*series: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><Publication_MarketDocument '
        'xmlns="urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3"><mRID>x</mRID>'
        "<revisionNumber>1</revisionNumber><type>A44</type>" + "".join(series) + "</Publication_MarketDocument>"
    )


def test_de_lu_reads_the_sdac_auction_when_both_auctions_are_at_15_minutes() -> None:
    # Found in review: both in one pool, the first quarter-hour's two prices were refused as a conflict,
    # and DE-LU had no prices at all.
    document = _de_lu_document(
        _de_lu_series("PT15M", SDAC_15M, sequence=1), _de_lu_series("PT15M", EXAA_15M, sequence=2)
    )
    assert [i.price for i in parse_a44(document, expected_area_eic=DE_LU)] == SDAC_15M
    assert [i.price for i in parse_a44(document, expected_area_eic=DE_LU, sequence=2)] == EXAA_15M


def test_an_hourly_sdac_price_is_not_replaced_by_the_finer_exaa_prices() -> None:
    # Before October 2025 SDAC was hourly and EXAA quarter-hourly: the finest resolution won, so the
    # hour was priced by the other auction.
    document = _de_lu_document(_de_lu_series("PT60M", [65.0], sequence=1), _de_lu_series("PT15M", EXAA_15M, sequence=2))
    intervals = parse_a44(document, expected_area_eic=DE_LU, prefer=ResolutionPreference.FINEST)
    assert [(i.price, i.resolution) for i in intervals] == [(65.0, "PT60M")]


def test_a_document_with_only_another_auction_is_no_data_naming_the_sequence() -> None:
    # In the morning EXAA's prices are out before SDAC's: they are not the day-ahead price of the zone.
    document = _de_lu_document(_de_lu_series("PT15M", EXAA_15M, sequence=2))
    with pytest.raises(NoPriceDataError) as caught:
        parse_a44(document, expected_area_eic=DE_LU)
    assert caught.value.field == "TimeSeries"
    assert "position 1" in caught.value.detail and "classificationSequence position 2" in caught.value.detail


def test_intraday_series_beside_the_day_ahead_ones_are_not_read() -> None:
    # ES answers have carried contract_MarketAgreement.type A07 (intraday) series (entsoe-py#446).
    document = _de_lu_document(
        _de_lu_series("PT15M", SDAC_15M, sequence=None),
        _de_lu_series("PT15M", EXAA_15M, sequence=None, contract="A07"),
    )
    assert [i.price for i in parse_a44(document, expected_area_eic=DE_LU)] == SDAC_15M
    with pytest.raises(NoPriceDataError, match=r"contract_MarketAgreement\.type A07") as caught:
        parse_a44(_de_lu_document(_de_lu_series("PT15M", EXAA_15M, None, contract="A07")))
    assert "sequence" not in caught.value.detail.split("holds", 1)[1]  # no sequence reads an intraday series


@pytest.mark.parametrize("text", ["one", "１", "0_1"])  # int() read the full-width 1 and 0_1 as 1
def test_a_sequence_position_that_is_not_a_number_is_refused_naming_it(text: str) -> None:
    document = _de_lu_document(_de_lu_series("PT15M", SDAC_15M, sequence=1).replace(">1</class", f">{text}</class"))
    with pytest.raises(PriceDataError) as caught:
        parse_a44(document)
    assert caught.value.field == "TimeSeries[0].classificationSequence_AttributeInstanceComponent.position"
    assert caught.value.detail == f"not an integer: {text!r}"


def test_a_series_without_a_contract_type_or_with_an_empty_position_is_read() -> None:
    # Older answers and the shipped BE recordings carry neither element: such a series is the zone's one
    # day-ahead auction, whatever sequence the feed names. An empty or blank element is no element.
    without_contract = _de_lu_series("PT15M", SDAC_15M, sequence=None).replace(
        "<contract_MarketAgreement.type>A01</contract_MarketAgreement.type>", ""
    )
    assert [i.price for i in parse_a44(_de_lu_document(without_contract), sequence=2)] == SDAC_15M
    padded = _de_lu_series("PT15M", SDAC_15M, sequence=None, contract=" A01\n")
    assert [i.price for i in parse_a44(_de_lu_document(padded))] == SDAC_15M
    for empty in ("", "  "):
        blank = _de_lu_series("PT15M", SDAC_15M, sequence=1).replace(">1</class", f">{empty}</class")
        assert [i.price for i in parse_a44(_de_lu_document(blank), sequence=2)] == SDAC_15M


# --- a resolution that covers only part of another's slot -------------------------------------------


def _series(start: str, end: str, resolution: str, prices: list[float]) -> str:
    """A DE-LU day-ahead series of one period [start, end) on 29 October 2025 (times are HH:MM, UTC)."""
    day = "2025-10-29T"
    return _de_lu_series(resolution, prices, sequence=1).replace(
        "<start>2025-10-28T23:00Z</start><end>2025-10-29T00:00Z</end>",
        f"<start>{day}{start}Z</start><end>{day}{end}Z</end>",
    )


def _priced(intervals: list[PriceInterval]) -> list[tuple[str, str, float]]:
    return [(f"{i.start:%H:%M}", f"{i.end:%H:%M}", i.price) for i in intervals]


@pytest.mark.parametrize(
    ("quarters", "expected"),
    [
        (  # the second half of the first hour at 15 minutes: the hour's price stands for its first half
            _series("10:30", "11:00", "PT15M", [80, 81]),
            [("10:00", "10:30", 100), ("10:30", "10:45", 80), ("10:45", "11:00", 81), ("11:00", "12:00", 110)],
        ),
        (  # one quarter inside the hour: the hour's price on both sides of it
            _series("10:15", "10:30", "PT15M", [80]),
            [("10:00", "10:15", 100), ("10:15", "10:30", 80), ("10:30", "11:00", 100), ("11:00", "12:00", 110)],
        ),
        (  # quarters from the middle of one hour into the next: each hour keeps what is left of it
            _series("10:30", "11:15", "PT15M", [80, 81, 82]),
            [
                ("10:00", "10:30", 100),
                ("10:30", "10:45", 80),
                ("10:45", "11:00", 81),
                ("11:00", "11:15", 82),
                ("11:15", "12:00", 110),
            ],
        ),
    ],
)
def test_an_hour_the_finer_prices_cover_in_part_keeps_its_price_for_the_rest(
    quarters: str, expected: list[tuple[str, str, float]]
) -> None:
    # Found in review: the hour was dropped whole, so 10:00-10:30 had no price ("no price for now")
    # although the document priced it.
    hours = _series("10:00", "12:00", "PT60M", [100, 110])
    for document in (_de_lu_document(hours, quarters), _de_lu_document(quarters, hours)):
        intervals = parse_a44(document, prefer=ResolutionPreference.FINEST)
        assert _priced(intervals) == expected
        assert_contiguous(intervals)
        assert {(i.currency, i.unit, i.kind) for i in intervals} == {("EUR", EnergyUnit.MWH, PriceKind.ACTUAL)}


def test_a_finer_slot_the_coarser_prices_cover_in_part_keeps_its_price_for_the_rest() -> None:
    # With the coarsest preferred, a finer slot is cut the same way where the two resolutions do not
    # nest (20 minutes across a half-hour boundary): 10:30-10:40 keeps the 20-minute price.
    halves = _series("10:00", "10:30", "PT30M", [100])
    thirds = _series("10:00", "11:00", "PT20M", [70, 71, 72])
    intervals = parse_a44(_de_lu_document(thirds, halves), prefer=ResolutionPreference.COARSEST)
    assert _priced(intervals) == [("10:00", "10:30", 100), ("10:30", "10:40", 71), ("10:40", "11:00", 72)]
    assert [i.resolution for i in intervals] == ["PT30M", "PT10M", "PT20M"]


def test_two_hourly_series_partly_covered_by_finer_prices_still_conflict() -> None:
    quarters = _series("10:00", "10:15", "PT15M", [80])
    hours = _series("10:00", "11:00", "PT60M", [100])
    other = _series("10:00", "11:00", "PT60M", [101])
    with pytest.raises(PriceDataError) as caught:
        parse_a44(_de_lu_document(quarters, hours, other), feed="de-lu")
    assert (caught.value.feed, caught.value.field) == ("de-lu", "TimeSeries[2].Period[0].Point position 1")
    assert caught.value.detail == (
        "price 101.0 for 2025-10-29T10:00Z conflicts with 100.0 at TimeSeries[1].Period[0].Point position 1"
    )
    # The same hourly series twice is a duplicate: its uncovered part is priced once.
    intervals = parse_a44(_de_lu_document(hours, quarters, hours))
    assert _priced(intervals) == [("10:00", "10:15", 80), ("10:15", "11:00", 100)]


# --- writer -------------------------------------------------------------------------------------

prices = st.one_of(
    st.integers(min_value=-500, max_value=4000).map(float),
    st.decimals(min_value=-500, max_value=4000, places=2).map(float),
)


@st.composite
def series_runs(draw: st.DrawFn) -> list[PriceInterval]:
    """Contiguous or gapped runs of PT15M/PT60M intervals with repeated and negative prices."""
    start = datetime(2024, 10, 26, 22, tzinfo=UTC) + timedelta(hours=draw(st.integers(0, 48)))
    intervals: list[PriceInterval] = []
    for _ in range(draw(st.integers(1, 3))):
        resolution = timedelta(minutes=draw(st.sampled_from([15, 60])))
        start += timedelta(hours=draw(st.integers(0, 3)))
        count = draw(st.integers(1, 30))
        values = draw(st.lists(prices, min_size=1, max_size=4))
        for index in range(count):
            price = values[draw(st.integers(0, len(values) - 1))] if index else values[0]
            intervals.append(PriceInterval(start, start + resolution, price, "EUR", EnergyUnit.MWH, PriceKind.ACTUAL))
            start += resolution
    return intervals


@settings(max_examples=60, deadline=None)
@given(series_runs(), st.sampled_from(["A01", "A03"]))
def test_writer_then_parser_gives_back_the_series(intervals: list[PriceInterval], curve: str) -> None:
    document = write_a44(intervals, area_eic=BE, created_at=datetime(2024, 10, 25, 12, tzinfo=UTC), curve_type=curve)
    assert parse_a44(document, expected_area_eic=BE) == intervals


def test_writer_output_round_trips_a_recorded_document_and_omits_repeats_in_a03() -> None:
    recorded = parse_a44(MIX.read_bytes(), expected_area_eic=BE)
    written = write_a44(recorded, area_eic=BE, created_at=datetime(2024, 10, 7, 14, 36, tzinfo=UTC))
    assert parse_a44(written, expected_area_eic=BE) == recorded
    # A03 drops repeated positions: the recorded file lists 71 points for its 216 positions.
    assert written.count("<Point>") == MIX.read_text().count("<Point>")
    full = write_a44(recorded, area_eic=BE, created_at=datetime(2024, 10, 7, tzinfo=UTC), curve_type="A01")
    assert full.count("<Point>") == 216


def test_a_year_of_real_prices_with_gaps_round_trips(shared_data: Path) -> None:
    from gridshift.signals.price_csv import parse_price_csv

    text = (shared_data / "prices-2024" / "prices_2024_utc_hourly_wide.csv").read_text()
    year = parse_price_csv(text, column="DE-LU_EUR_per_MWh")  # 26 missing hours, negative prices
    document = write_a44(year, area_eic="10Y1001A1001A82H", created_at=datetime(2023, 12, 31, tzinfo=UTC))
    assert parse_a44(document, expected_area_eic="10Y1001A1001A82H") == year


# --- every refusal, with its exact field and reason ------------------------------------------------

NL = "10YNL----------L"
_PERIOD_TIMES = "<start>2024-10-07T22:00Z</start>\n              <end>2024-10-08T22:00Z</end>"


def _period_times(start: str, end: str) -> str:
    return _edit(_PERIOD_TIMES, f"<start>{start}</start>\n              <end>{end}</end>")


def _points_removed(keep: int) -> str:
    """HOURLY with all but the first `keep` points of its period removed."""
    text = HOURLY.read_text()
    first = text.index("<Point>")
    end = text.rindex("</Point>") + len("</Point>")
    kept_end = first
    for _ in range(keep):
        kept_end = text.index("</Point>", kept_end) + len("</Point>")
    return text[:kept_end] + text[end:]


def _first_point_removed() -> str:
    text = HOURLY.read_text()
    start = text.index("<Point>")
    end = text.index("</Point>", start) + len("</Point>")
    assert "<position>1</position>" in text[start:end]
    return text[:start] + text[end:]


def _last_point_removed() -> str:
    text = HOURLY.read_text()
    start = text.rindex("<Point>")
    end = text.index("</Point>", start) + len("</Point>")
    assert "<position>24</position>" in text[start:end]
    return text[:start] + text[end:]


@pytest.mark.parametrize(
    ("document", "field", "detail"),
    [
        (_edit("<type>A44</type>", "<type>  </type>"), "type", "missing"),
        (_edit("<type>A44</type>", ""), "type", "missing"),
        (
            _edit('<in_Domain.mRID codingScheme="A01">10YBE----------2</in_Domain.mRID>', ""),
            "TimeSeries[0].in_Domain.mRID",
            "missing",
        ),
        (
            _edit(
                f'<out_Domain.mRID codingScheme="A01">{BE}</out_Domain.mRID>',
                f"<out_Domain.mRID>{NL}</out_Domain.mRID>",
            ),
            "TimeSeries[0].out_Domain.mRID",
            f"document is for bidding zone {NL}, requested {BE}",
        ),
        (
            _edit("<curveType>A03</curveType>", "", _without_position_2()),  # no curveType: A01, every position
            "TimeSeries[0].Period[0].Point",
            "curveType A01 must list every position; missing [2]",
        ),
        (
            _edit("<curveType>A03</curveType>", "<curveType> </curveType>"),
            "TimeSeries[0].curveType",
            "'' is neither A01 nor A03",
        ),
        (
            _edit(
                HOURLY.read_text()[HOURLY.read_text().index("<Period>") : HOURLY.read_text().index("</Period>") + 9], ""
            ),
            "TimeSeries[0].Period",
            "TimeSeries has no Period",
        ),
        (_period_times("", "2024-10-08T22:00Z"), "TimeSeries[0].Period[0].timeInterval.start", "missing"),
        (_period_times("2024-10-07T22:00Z", ""), "TimeSeries[0].Period[0].timeInterval.end", "missing"),
        (
            _period_times("yesterday", "2024-10-08T22:00Z"),
            "TimeSeries[0].Period[0].timeInterval.start",
            "not an ISO 8601 time: 'yesterday'",
        ),
        (
            _period_times("2024-10-07T22:00Z", "2024-10-08T22:00"),
            "TimeSeries[0].Period[0].timeInterval.end",
            "time without a UTC offset: '2024-10-08T22:00'",
        ),
        (
            _period_times("2024-10-07T22:00Z", "2024-10-07T22:00Z"),
            "TimeSeries[0].Period[0].timeInterval.end",
            "not after timeInterval.start",
        ),
        (
            _period_times("2024-10-08T22:00Z", "2024-10-07T22:00Z"),
            "TimeSeries[0].Period[0].timeInterval.end",
            "not after timeInterval.start",
        ),
        (_edit("<resolution>PT60M</resolution>", ""), "TimeSeries[0].Period[0].resolution", "missing"),
        (
            _edit("<resolution>PT60M</resolution>", "<resolution>P1X</resolution>"),
            "TimeSeries[0].Period[0].resolution",
            "not an ISO 8601 duration of days, hours or minutes: 'P1X'",
        ),
        (
            _edit("<resolution>PT60M</resolution>", "<resolution>PT7M</resolution>"),
            "TimeSeries[0].Period[0].resolution",
            "PT7M does not divide the period 22:00..22:00",
        ),
        (
            _edit("<position>1</position>", "<position>one</position>"),
            "TimeSeries[0].Period[0].Point[0].position",
            "not an integer: 'one'",
        ),
        # int() and float() read "1_00" as 100 and full-width digits as ASCII ones (gridshift.numerals.plain_number).
        (
            _edit("<position>1</position>", "<position>１</position>"),
            "TimeSeries[0].Period[0].Point[0].position",
            "not an integer: '１'",
        ),
        (
            _edit("<price.amount>100</price.amount>", "<price.amount>1_00</price.amount>"),
            "TimeSeries[0].Period[0].Point[8].price.amount",
            "not a number: '1_00'",
        ),
        (
            _edit("<resolution>PT60M</resolution>", "<resolution>PT６０M</resolution>"),
            "TimeSeries[0].Period[0].resolution",
            "not an ISO 8601 duration of days, hours or minutes: 'PT６０M'",
        ),
        (_edit("<position>1</position>", ""), "TimeSeries[0].Period[0].Point[0].position", "missing"),
        (
            _edit("<price.amount>64.98</price.amount>", ""),
            "TimeSeries[0].Period[0].Point[0].price.amount",
            "missing",
        ),
        (
            _edit("<position>1</position>", "<position>0</position>"),
            "TimeSeries[0].Period[0].Point[0].position",
            "0 is out of order or outside 1..24 (24 x PT60M)",
        ),
        (
            _edit("<position>24</position>", "<position>25</position>"),
            "TimeSeries[0].Period[0].Point[23].position",
            "25 is out of order or outside 1..24 (24 x PT60M)",
        ),
        (_points_removed(0), "TimeSeries[0].Period[0].Point", "period has no points"),
        (
            _edit("<position>1</position>", "<position>2</position>", _without_position_2()),
            "TimeSeries[0].Period[0].Point",
            "curveType A03 must start at position 1",
        ),
        (
            _edit(' xmlns="urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3"', ""),
            "document",
            "namespace '' is not 'urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3'",
        ),
        (
            _edit("publicationdocument:7:3", "publicationdocument:6:0"),
            "document",
            "namespace 'urn:iec62325.351:tc57wg16:451-3:publicationdocument:6:0' is not "
            "'urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3'",
        ),
        (_edit("<type>A44</type>", "<type>A65</type>"), "type", "document type A65 is not A44 (day-ahead prices)"),
        (
            b"<html><body>Service Unavailable</body></html>",
            "document",
            "root element is html, not Publication_MarketDocument",
        ),
        (b"  \n ", "document", "empty body"),
        (b"<Publication_MarketDocument", "document", "malformed or truncated XML (unclosed token: line 1, column 0)"),
        (b"<!doctype x><x/>", "document", "declares a DTD or entities; refused"),
        (b'<?xml version="1.0"?><!ENTITY a "b"><x/>', "document", "declares a DTD or entities; refused"),
        (
            _edit("<price.amount>100</price.amount>", "<price.amount>-inf</price.amount>"),
            "TimeSeries[0].Period[0].Point[8].price.amount",
            "not a finite number: '-inf'",
        ),
        (
            _edit("<price.amount>100</price.amount>", "<price.amount>1OO</price.amount>"),
            "TimeSeries[0].Period[0].Point[8].price.amount",
            "not a number: '1OO'",
        ),
        (
            _edit("<currency_Unit.name>EUR</currency_Unit.name>", ""),
            "TimeSeries[0].currency_Unit.name",
            "missing",
        ),
        (
            _edit(">MWH<", ">GWH<"),
            "TimeSeries[0].price_Measure_Unit.name",
            "unknown energy unit 'GWH'; expected one of MWh, kWh",
        ),
        (
            _edit("<curveType>A03</curveType>", "<curveType/>"),
            "TimeSeries[0].curveType",
            "'' is neither A01 nor A03",
        ),
        (
            _edit("<price_Measure_Unit.name>MWH</price_Measure_Unit.name>", ""),
            "TimeSeries[0].price_Measure_Unit.name",
            "missing",
        ),
        (
            b'<Publication_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3">'
            b"<type>A44</type></Publication_MarketDocument>",
            "TimeSeries",
            "document holds no TimeSeries",
        ),
        (
            _edit("<curveType>A03</curveType>", "<curveType>A01</curveType>", _first_point_removed()),
            "TimeSeries[0].Period[0].Point",
            "curveType A01 must list every position; missing [1]",
        ),
        (
            _edit("<curveType>A03</curveType>", "<curveType>A01</curveType>", _last_point_removed()),
            "TimeSeries[0].Period[0].Point",
            "curveType A01 must list every position; missing [24]",
        ),
        (
            _edit("<curveType>A03</curveType>", "<curveType>A01</curveType>", MIX.read_text()),
            "TimeSeries[0].Period[0].Point",
            "curveType A01 must list every position; missing [2, 3, 4, 6, 7]",
        ),
    ],
)
def test_every_refusal_names_the_field_and_says_why(document: str | bytes, field: str, detail: str) -> None:
    with pytest.raises(PriceDataError) as caught:
        parse_a44(document, feed="eu-be", expected_area_eic=BE)
    assert (caught.value.feed, caught.value.field, caught.value.detail) == ("eu-be", field, detail)
    assert str(caught.value) == f"price feed 'eu-be': {field}: {detail}"


def test_only_the_first_4096_bytes_are_scanned_for_a_dtd() -> None:
    # A price document declares nothing in its head; what follows is left to expat, which refuses it.
    def at(offset: int) -> bytes:
        body = b"<x>" + b" " * (offset - 3) + b"<!DOCTYPE y></x>"
        assert body.index(b"<!DOCTYPE") == offset
        return body

    for offset, detail in [(4087, "declares a DTD or entities; refused"), (4088, "malformed or truncated XML")]:
        with pytest.raises(PriceDataError) as caught:
            parse_a44(at(offset), feed="eu-be")
        assert caught.value.detail.startswith(detail), offset


def test_a_dtd_is_refused_wherever_it_stands_and_in_any_encoding() -> None:
    # Review, 3 December: only the first 4096 bytes were scanned, so a long comment before the DOCTYPE,
    # or a UTF-16 body, let entity declarations through (a price replaced; a ~100x blow-up of memory).
    dtd = "<!DOCTYPE x [<!ENTITY p '999'>]>"
    padded = f"<?xml version='1.0'?><!--{' ' * 5000}-->{dtd}<x>&p;</x>"
    for body in (padded.encode(), padded.replace("'1.0'", "'1.0' encoding='utf-16'").encode("utf-16")):
        with pytest.raises(PriceDataError) as caught:
            parse_a44(body, feed="eu-be")
        assert (caught.value.field, caught.value.detail) == ("document", "declares a DTD or entities; refused")
    # A DOCTYPE where none may stand is malformed XML, said as such.
    with pytest.raises(PriceDataError) as caught:
        parse_a44(b"<x>" + b" " * 5000 + b"<!DOCTYPE y></x>", feed="eu-be")
    assert caught.value.detail.startswith("malformed or truncated XML")


def test_a_dtd_that_declares_no_entities_is_refused_past_the_head_too() -> None:
    # A price document never has a DOCTYPE, entities or not (an external one names a server to fetch from, an
    # internal subset can default attributes). Past the 4 KiB head, or in UTF-16, only expat's DOCTYPE handler
    # sees one: an otherwise valid day of prices must still be refused, not parsed.
    doctype = '<!DOCTYPE Publication_MarketDocument SYSTEM "https://prices.invalid/a44.dtd">'
    declaration = '<?xml version="1.0" encoding="utf-8"?>'
    padded = _edit(declaration, f"{declaration}<!--{' ' * 5000}-->{doctype}")
    utf16 = _edit(declaration, f'<?xml version="1.0" encoding="utf-16"?>{doctype}')
    for body in (padded.encode(), utf16.encode("utf-16")):
        with pytest.raises(PriceDataError) as caught:
            parse_a44(body, feed="eu-be", expected_area_eic=BE)
        assert (caught.value.field, caught.value.detail) == ("document", "declares a DTD or entities; refused")


def test_the_default_feed_name_is_entsoe() -> None:
    with pytest.raises(PriceDataError) as caught:
        parse_a44(b"")
    assert caught.value.feed == "entsoe"


def _acknowledgement(reasons: str) -> bytes:
    return (
        '<Acknowledgement_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0">'
        f"<mRID>x</mRID>{reasons}</Acknowledgement_MarketDocument>"
    ).encode()


@pytest.mark.parametrize(
    ("reasons", "detail"),
    [
        ("", "ENTSO-E acknowledged without data: no reason given"),
        ("<Reason><code>999</code></Reason>", "ENTSO-E acknowledged without data: 999 ''"),
        ("<Reason><code>999</code><text/></Reason>", "ENTSO-E acknowledged without data: 999 ''"),
        ("<Reason><code/><text>none</text></Reason>", "ENTSO-E acknowledged without data: 'none'"),
        ("<Reason><text> no data </text></Reason>", "ENTSO-E acknowledged without data: 'no data'"),
        (
            "<Reason><code> 999 </code><text>none</text></Reason><Reason><code>A01</code><text>later</text></Reason>",
            "ENTSO-E acknowledged without data: 999 'none'; A01 'later'",
        ),
    ],
)
def test_acknowledgements_give_each_reason(reasons: str, detail: str) -> None:
    with pytest.raises(NoPriceDataError) as caught:
        parse_a44(_acknowledgement(reasons), feed="eu-be")
    assert (caught.value.feed, caught.value.field, caught.value.detail) == ("eu-be", "Reason", detail)


def test_the_recorded_acknowledgement_reads_in_full() -> None:
    with pytest.raises(NoPriceDataError) as caught:
        parse_a44(ACK.read_bytes(), feed="eu-be")
    assert caught.value.detail.startswith("ENTSO-E acknowledged without data: 999 'No matching data found")


def test_period_times_with_an_offset_are_read_in_utc() -> None:
    document = _period_times("2024-10-08T00:00+02:00", "2024-10-09T00:00+02:00")
    intervals = parse_a44(document, expected_area_eic=BE)
    assert (intervals[0].start, intervals[-1].end) == (utc("2024-10-07T22:00"), utc("2024-10-08T22:00"))
    assert intervals[0].start.tzinfo is UTC


def test_any_bidding_zone_is_read_when_none_is_expected() -> None:
    assert len(parse_a44(HOURLY.read_bytes())) == 24


def test_conflicting_prices_name_both_places() -> None:
    text = HOURLY.read_text()
    series = text[text.index("      <TimeSeries>") : text.index("</TimeSeries>") + len("</TimeSeries>")]
    conflicting = series.replace("<price.amount>100</price.amount>", "<price.amount>101</price.amount>")
    with pytest.raises(PriceDataError) as caught:
        parse_a44(text.replace(series, series + "\n" + conflicting), feed="eu-be")
    assert (caught.value.feed, caught.value.field) == ("eu-be", "TimeSeries[1].Period[0].Point position 9")
    assert caught.value.detail == (
        "price 101.0 for 2024-10-08T06:00Z conflicts with 100.0 at TimeSeries[0].Period[0].Point position 9"
    )
