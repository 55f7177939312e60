"""The A44 writer against the shape of real ENTSO-E documents: what it writes for a recorded day's
prices is that day's document, element for element, header fields included."""

from __future__ import annotations

import math
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from gridshift.api.regional_cluster import EnergyUnit
from gridshift.signals.entsoe import parse_a44, write_a44
from gridshift.signals.prices import PriceDataError, PriceInterval, PriceKind
from tests.signals.conftest import ENTSOE_FIXTURES

BE = "10YBE----------2"
NS = "{urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3}"
HOURLY_NAME = "hass-entso-e_BE_60M_2024-10-08.xml"
MIX = ENTSOE_FIXTURES / "hass-entso-e_BE_60M_15M_mix_2024-10-06_possibly-edited.xml"

Element = tuple[int, str, tuple[tuple[str, str], ...], str]


def elements(document: str | bytes) -> list[Element]:
    """(depth, tag without namespace, attributes, text) of every element, in document order."""
    root = ET.fromstring(document.encode() if isinstance(document, str) else document)
    assert root.tag.startswith(NS)
    found: list[Element] = []

    def walk(element: ET.Element, depth: int) -> None:
        found.append(
            (depth, element.tag.removeprefix(NS), tuple(sorted(element.attrib.items())), (element.text or "").strip())
        )
        for child in element:
            walk(child, depth + 1)

    walk(root, 0)
    return found


def header(document: str | bytes) -> dict[str, str]:
    root = ET.fromstring(document.encode() if isinstance(document, str) else document)
    return {child.tag.removeprefix(NS): (child.text or "").strip() for child in root if len(child) == 0}


def rewrite(recorded: bytes, **overrides: object) -> str:
    """The writer's document for a recorded one's prices, with its mRID, creation time and curve type."""
    head = header(recorded)
    curve = ET.fromstring(recorded).find(f"{NS}TimeSeries/{NS}curveType")
    assert curve is not None and curve.text
    arguments: dict[str, object] = {
        "area_eic": BE,
        "created_at": datetime.fromisoformat(head["createdDateTime"].replace("Z", "+00:00")),
        "document_mrid": head["mRID"],
        "curve_type": curve.text,
    }
    arguments.update(overrides)
    return write_a44(parse_a44(recorded, expected_area_eic=BE), **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize("where", ["shared", "fixtures"])
def test_writer_reproduces_a_recorded_day_ahead_document_element_for_element(where: str, shared_data: Path) -> None:
    # The hourly BE document as the Transparency Platform published it (via hass-entso-e, Apache-2.0):
    # the sender/receiver codes and roles, codingScheme attributes, auction and business types, contract
    # type, units, curve type, intervals, positions and price text all come out the same.
    folder = shared_data / "entsoe-xml" if where == "shared" else ENTSOE_FIXTURES
    recorded = (folder / HOURLY_NAME).read_bytes()
    assert elements(rewrite(recorded)) == elements(recorded)


@pytest.mark.parametrize("name", ["derived_BE_60M_DST_23h_2024-03-31.xml", "derived_BE_60M_DST_25h_2024-10-27.xml"])
def test_writer_reproduces_the_dst_day_documents(name: str) -> None:
    recorded = (ENTSOE_FIXTURES / name).read_bytes()
    written = elements(rewrite(recorded))
    # These were derived by hand without seconds in createdDateTime; the platform (and the writer) gives them.
    expected = [
        (d, tag, attrs, text.removesuffix("Z") + ":00Z" if tag == "createdDateTime" else text)
        for d, tag, attrs, text in elements(recorded)
    ]
    assert written == expected


def test_writer_header_fields_are_the_day_ahead_documents() -> None:
    document = write_a44(
        parse_a44(MIX.read_bytes(), expected_area_eic=BE),
        area_eic=BE,
        created_at=datetime(2024, 10, 7, 16, 36, 5, tzinfo=timezone(timedelta(hours=2))),
    )
    assert header(document) == {
        "mRID": "gridshift-simulated",
        "revisionNumber": "1",
        "type": "A44",
        "sender_MarketParticipant.mRID": "10X1001A1001A450",
        "sender_MarketParticipant.marketRole.type": "A32",
        "receiver_MarketParticipant.mRID": "10X1001A1001A450",
        "receiver_MarketParticipant.marketRole.type": "A33",
        "createdDateTime": "2024-10-07T14:36:05Z",  # converted to UTC
    }
    recorded_series = _series_headers(MIX.read_bytes())
    written_series = _series_headers(document)
    # One TimeSeries per contiguous run of one resolution, numbered from 1, each with the recorded fields.
    assert [s.pop("mRID") for s in written_series] == [str(n) for n in range(1, len(written_series) + 1)]
    for series in recorded_series:
        series.pop("mRID")
    assert all(series == recorded_series[0] for series in written_series + recorded_series)


def _series_headers(document: str | bytes) -> list[dict[str, str]]:
    root = ET.fromstring(document.encode() if isinstance(document, str) else document)
    return [
        {
            child.tag.removeprefix(NS) + "".join(f"@{k}={v}" for k, v in sorted(child.attrib.items())): (
                child.text or ""
            ).strip()
            for child in series
            if len(child) == 0
        }
        for series in root.findall(f"{NS}TimeSeries")
    ]


def test_writer_document_interval_spans_all_intervals_in_utc() -> None:
    cest = timezone(timedelta(hours=2))
    start = datetime(2024, 10, 8, 0, tzinfo=cest)
    intervals = [
        PriceInterval(start, start + timedelta(hours=1), 50.0, "EUR", EnergyUnit.MWH, PriceKind.ACTUAL),
        PriceInterval(
            start + timedelta(hours=3), start + timedelta(hours=4), 60.5, "EUR", EnergyUnit.MWH, PriceKind.ACTUAL
        ),
    ]
    document = write_a44(intervals, area_eic=BE, created_at=datetime(2024, 10, 7, tzinfo=UTC))
    root = ET.fromstring(document)
    assert [e.text for e in root.iterfind(f"{NS}period.timeInterval/*")] == ["2024-10-07T22:00Z", "2024-10-08T02:00Z"]
    periods = [[e.text for e in period.iterfind(f"{NS}timeInterval/*")] for period in root.iter(f"{NS}Period")]
    assert periods == [["2024-10-07T22:00Z", "2024-10-07T23:00Z"], ["2024-10-08T01:00Z", "2024-10-08T02:00Z"]]
    assert [e.text for e in root.iter(f"{NS}price.amount")] == ["50", "60.5"]
    assert document.startswith("<?xml version='1.0' encoding='utf-8'?>\n<Publication_MarketDocument xmlns=")
    assert document.endswith("</Publication_MarketDocument>\n")


def test_writer_refuses_an_unknown_curve_type_and_mixed_units() -> None:
    start = datetime(2024, 10, 8, tzinfo=UTC)
    hour = timedelta(hours=1)
    mwh = PriceInterval(start, start + hour, 50.0, "EUR", EnergyUnit.MWH, PriceKind.ACTUAL)
    with pytest.raises(ValueError, match=r"^curve_type must be A01 or A03, not 'A02'$"):
        write_a44([mwh], area_eic=BE, created_at=start, curve_type="A02")
    kwh = PriceInterval(start + hour, start + 2 * hour, 0.05, "EUR", EnergyUnit.KWH, PriceKind.ACTUAL)
    with pytest.raises(ValueError, match=r"^all intervals must share one unit; kWh differs from MWh$"):
        write_a44([mwh, kwh], area_eic=BE, created_at=start)


@pytest.fixture
def machine_in_new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local timezone far from UTC (the writer must not use it)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("machine_in_new_york")
def test_writer_times_are_utc_whatever_the_machines_timezone() -> None:
    recorded = (ENTSOE_FIXTURES / HOURLY_NAME).read_bytes()
    assert elements(rewrite(recorded)) == elements(recorded)


def test_writer_refuses_intervals_it_cannot_trust_as_the_writer() -> None:
    with pytest.raises(PriceDataError) as caught:
        write_a44([], area_eic=BE, created_at=datetime(2024, 10, 7, tzinfo=UTC))
    assert (caught.value.feed, caught.value.field, caught.value.detail) == (
        "writer",
        "intervals",
        "no prices (empty series)",
    )
    start = datetime(2024, 10, 8, tzinfo=UTC)
    nan = PriceInterval(start, start + timedelta(hours=1), math.nan, "EUR", EnergyUnit.MWH, PriceKind.ACTUAL)
    with pytest.raises(PriceDataError) as caught:
        write_a44([nan], area_eic=BE, created_at=start)
    assert (caught.value.feed, caught.value.field) == ("writer", "intervals[0].price")
