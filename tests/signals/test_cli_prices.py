"""`gridshift prices`: files and URLs, table and JSON output, clear usage errors.

Until gridshift.cli.prices is listed in cli/main.py's SUBCOMMAND_MODULES, the subcommand is
registered on a local parser built the same way main does."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from gridshift.cli import prices
from gridshift.cli.main import UsageError
from tests.signals.conftest import ENTSOE_FIXTURES, LocalServer, Reply, Request

HOURLY = ENTSOE_FIXTURES / "hass-entso-e_BE_60M_2024-10-08.xml"
MIX = ENTSOE_FIXTURES / "hass-entso-e_BE_60M_15M_mix_2024-10-06_possibly-edited.xml"


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="gridshift")
    prices.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["prices", *argv])
    result: int = args.handler(args)
    return result


def test_entsoe_file_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(HOURLY), "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 24
    assert rows[0] == {
        "start": "2024-10-07T22:00:00Z",
        "end": "2024-10-07T23:00:00Z",
        "price": 64.98,
        "currency": "EUR",
        "unit": "MWh",
        "resolution": "PT60M",
    }
    assert rows[19]["price"] == 115.47


def test_mixed_resolutions_are_reported_per_interval(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(MIX), "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["resolution"] for r in rows].count("PT15M") == 192
    assert [r["resolution"] for r in rows].count("PT60M") == 24


def test_wide_csv_column_as_json(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wide = shared_data / "prices-2024" / "prices_2024_utc_hourly_wide.csv"
    assert run(str(wide), "--column", "US-TEX-ERCO_USD_per_MWh", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0] == {
        "start": "2024-01-01T00:00:00Z",
        "end": "2024-01-01T01:00:00Z",
        "price": 24.84,
        "currency": "USD",
        "unit": "MWh",
        "resolution": "PT60M",
    }


def test_url_source_is_fetched_and_printed_as_a_table(
    local_server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    local_server.answer(Reply(body=HOURLY.read_bytes(), content_type="application/xml"))
    assert run(local_server.url + "/api?documentType=A44", "--format", "entsoe") == 0
    out = capsys.readouterr().out
    assert "24 intervals" in out
    assert "2024-10-08 17:00" in out and "115.47 EUR/MWh" in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["missing.xml"], "cannot read missing.xml"),
        ([str(ENTSOE_FIXTURES / "crafted_acknowledgement_999_no_data.xml")], "No matching data found"),
        ([str(HOURLY), "--column", "BE"], "--column applies to CSV sources only"),
        # Review: an unparsable URL was an httpx.InvalidURL traceback; other schemes were read as file paths.
        (["https://h:12ab/x?securityToken=S3cr3tTok"], r"not a valid URL: <unparsable URL omitted>"),
        (["ftp://example.org/prices.csv"], "only http:// and https:// URLs, or a file"),
        ([str(HOURLY), "--sequence", "0"], r"--sequence must be within 1\.\.9"),
        ([str(HOURLY), "--format", "csv", "--sequence", "2"], "--sequence applies to ENTSO-E documents only"),
    ],
)
def test_bad_sources_are_usage_errors(argv: list[str], words: str) -> None:
    with pytest.raises(UsageError, match=words):
        run(*argv)


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("ftp://h/x?securityToken=S3cr3tTok", "ftp://h/x?<query omitted>: only http"),
        ("https:/127.0.0.1/x.csv?securityToken=S3cr3tTok", "https:/127.0.0.1/x.csv?<query omitted>: No such file"),
        ("http:h/api?securityToken=S3cr3tTok", "http:h/api?<query omitted>: No such file"),
        ("web-api.tp.entsoe.eu/api?securityToken=S3cr3tTok", "web-api.tp.entsoe.eu/api?<query omitted>: No such"),
        # Found in review: without a query string, a URL's user:password@ was echoed.
        ("ftp://ops:S3cr3tTok@prices.example/day.csv", "ftp://REDACTED@prices.example/day.csv: only http"),
        ("sftp://S3cr3tTok@prices.example/day.csv", "sftp://REDACTED@prices.example/day.csv: only http"),
    ],
)
def test_a_source_that_is_not_read_never_shows_its_query_string_or_password(source: str, shown: str) -> None:
    # Found in review: a URL with another scheme, or with a slash missing, was echoed whole, token included.
    with pytest.raises(UsageError) as caught:
        run(source)
    assert "S3cr3tTok" not in str(caught.value)
    assert shown in str(caught.value)


def test_sequence_chooses_the_auction_of_a_zone_with_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = HOURLY.read_text()
    series = text[text.index("      <TimeSeries>") : text.index("</TimeSeries>") + len("</TimeSeries>")]
    tag = "classificationSequence_AttributeInstanceComponent.position"
    first = series.replace("</curveType>", f"</curveType><{tag}>1</{tag}>")
    second = first.replace(f">1</{tag}>", f">2</{tag}>").replace(">64.98<", ">60<")
    document = tmp_path / "de-lu.xml"
    document.write_text(text.replace(series, first + "\n" + second))
    assert run(str(document), "--json") == 0
    assert json.loads(capsys.readouterr().out)[0]["price"] == 64.98
    assert run(str(document), "--json", "--sequence", "2") == 0
    assert json.loads(capsys.readouterr().out)[0]["price"] == 60


def test_truncated_document_names_the_field(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_bytes(HOURLY.read_bytes()[:1200])
    with pytest.raises(UsageError, match=r"price feed 'broken.xml': document: malformed or truncated XML"):
        run(str(broken))


def test_http_error_is_a_usage_error(local_server: LocalServer) -> None:
    local_server.answer(Reply(status=401, body=b"no"))
    with pytest.raises(UsageError, match="HTTP 401"):
        run(local_server.url + "/x.xml")


def test_a_password_in_the_url_is_never_echoed(local_server: LocalServer, capsys: pytest.CaptureFixture[str]) -> None:
    # Found in review: the feed was named by the URL without its query only, so user:password@ was printed in
    # errors and in the table's title.
    secret = local_server.url.replace("http://", "HTTP://user:pa55w0rd-s3cret@")  # upper-case scheme too
    local_server.answer(Reply(status=404, body=b"no"))
    with pytest.raises(UsageError, match="HTTP 404") as refused:
        run(secret + "/x.xml?securityToken=S3cr3tTok")
    assert "pa55w0rd" not in str(refused.value) and "S3cr3tTok" not in str(refused.value)
    local_server.answer(Reply(body=HOURLY.read_bytes(), content_type="application/xml"))
    assert run(secret + "/api.xml") == 0
    out = capsys.readouterr()
    assert "24 intervals" in out.out and "pa55w0rd" not in out.out + out.err


def test_a_bare_query_token_and_a_fragment_are_never_echoed(
    local_server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found in review (6 December 2026): a key passed bare (`?<key>`, no `name=`) was not remembered, so a server
    # echoing what it was asked put it in the error; a `#fragment` stayed in the feed's name (errors, title).
    def echo(request: Request) -> Reply:  # a price cell that quotes what was asked, as a CSV error row may
        row = f"2024-01-01T00:00Z,{request.path}?{'&'.join(request.params)}"
        return Reply(body=f"start,Price (EUR/MWh)\n{row}\n".encode(), content_type="text/csv")

    local_server.respond = echo
    with pytest.raises(UsageError, match=r"row 2\.Price \(EUR/MWh\): not a number") as refused:
        run(local_server.url + "/x.csv?S3cr3tTokBare")
    assert "S3cr3tTokBare" not in str(refused.value)
    local_server.answer(Reply(status=404, body=b"no"))
    with pytest.raises(UsageError, match="HTTP 404") as refused:
        run(local_server.url + "/x.xml#token=S3cr3tFragment")
    assert "S3cr3tFragment" not in str(refused.value)


def test_only_a_bare_query_key_is_remembered_not_a_name_given_a_blank_value() -> None:
    # Review (6 December 2026): `?name=` was remembered as if bare, and that name was then redacted from every
    # message of the process (a Prometheus URL's `namespace=` blanked "namespace" in conditions and Events).
    from gridshift.redaction import redact
    from gridshift.signals.http import split_query

    split_query("https://prices.example/day.csv?blankvaluedname=&S3cr3tBareKey2&format=csv")
    assert redact("blankvaluedname S3cr3tBareKey2") == "blankvaluedname <redacted>"


def test_naive_timestamps_need_their_time_zone(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Found in review: the EU per-market files (French local time) were printed under "start (UTC)" as UTC.
    french = shared_data / "prices-2024" / "FR_electricity_prices_2024.csv"
    with pytest.raises(UsageError, match="carry no UTC offset; say whose local time they are with --timezone"):
        run(str(french), "--json")
    assert run(str(french), "--json", "--timezone", "Europe/Paris") == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["start"] == "2023-12-31T23:00:00Z" and rows[0]["price"] == 0.1
    # Found in self-review: the spring-forward row (02:00, which does not exist in Paris) was printed as
    # an interval of no length. Read as the operator's csvReplay reads it: that row priced no time and is
    # left out, and the second 02:00 of the autumn, which the file does not write, has no price.
    assert all(r["resolution"] == "PT60M" for r in rows)
    starts = [r["start"] for r in rows]
    assert "2024-10-27T00:00:00Z" in starts and "2024-10-27T01:00:00Z" not in starts
    assert len(starts) == len(set(starts))
    with pytest.raises(UsageError, match="unknown time zone 'Mars/Olympus'"):
        run(str(french), "--timezone", "Mars/Olympus")
    with pytest.raises(UsageError, match="--timezone applies to CSV sources only"):
        run(str(HOURLY), "--timezone", "UTC")


def test_a_local_time_file_writing_the_autumn_hour_twice_is_read_as_the_operator_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found in review: the CLI read naive times as UTC and moved them afterwards, so a file that writes the
    # fall-back hour twice (02:00 CEST, then 02:00 CET) was refused ("not after the previous row"), while the
    # operator's csvReplay (signals.recorded) takes it. Both now go through the same reader.
    path = tmp_path / "FR_autumn.csv"
    prices = ["50", "51", "52", "53", "54"]
    times = ["00:00", "01:00", "02:00", "02:00", "03:00"]
    path.write_text(
        "Datetime,Price (EUR/MWh)\n" + "".join(f"2024-10-27 {t}:00,{p}\n" for t, p in zip(times, prices, strict=True))
    )
    assert run(str(path), "--json", "--timezone", "Europe/Paris") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["start"], r["price"]) for r in rows] == [
        ("2024-10-26T22:00:00Z", 50.0),
        ("2024-10-26T23:00:00Z", 51.0),
        ("2024-10-27T00:00:00Z", 52.0),
        ("2024-10-27T01:00:00Z", 53.0),
        ("2024-10-27T02:00:00Z", 54.0),
    ]


def test_a_csv_whose_time_header_says_utc_is_read_as_utc_by_the_cli_as_by_the_operator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found in review: the operator read naive times under "datetime_utc" as UTC, gridshift prices asked
    # for --timezone (and simulate --prices for --prices-timezone).
    path = tmp_path / "p.csv"
    path.write_text("datetime_utc,Price (EUR/MWh)\n2024-07-01 12:00:00,42\n2024-07-01 13:00:00,43\n")
    assert run(str(path), "--json") == 0
    assert json.loads(capsys.readouterr().out)[0]["start"] == "2024-07-01T12:00:00Z"
    path.write_text("Time (UTC+01:00),Price (EUR/MWh)\n2024-07-01 12:00:00,42\n")
    with pytest.raises(UsageError, match="--timezone"):
        run(str(path), "--json")


def test_a_price_beyond_any_market_is_refused_naming_it(tmp_path: Path) -> None:
    # Found in review: 1e308 EUR/MWh was printed as is (and the simulator's bound failed on it in HiGHS).
    path = tmp_path / "DE-LU_prices.csv"
    path.write_text("Datetime,Price (EUR/MWh)\n2024-03-04T00:00:00Z,80\n2024-03-04T01:00:00Z,1e308\n")
    with pytest.raises(UsageError, match=r"1e\+308 EUR/MWh is beyond any market's price"):
        run(str(path), "--json")


def test_an_hours_only_offset_is_an_offset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Found in self-review: "+01" (which the parser honours) was taken for no offset, so --timezone was
    # asked for, and with it the hour was moved twice.
    path = tmp_path / "DE-LU_prices.csv"
    path.write_text("Datetime,Price (EUR/MWh)\n2024-01-01 00:00:00+01,50\n2024-01-01 01:00:00+01,60\n")
    assert run(str(path), "--json") == 0
    assert json.loads(capsys.readouterr().out)[0]["start"] == "2023-12-31T23:00:00Z"


def test_a_parse_error_quoting_an_echoed_credential_does_not_show_it(local_server: LocalServer) -> None:
    # Found in review: the feed's name hid the query, but a parse error quoted the body, which echoed the path
    # asked: `row 2.price_EUR_per_MWh: not a number: '/echo?securityToken=<token>'`. A password likewise.
    def echo(request: Request) -> Reply:
        query = "&".join(f"{key}={value}" for key, value in request.params.items())
        body = f"time,price_EUR_per_MWh\n2024-01-01T00:00:00Z,{request.path}?{query}\n"
        return Reply(body=body.encode(), content_type="text/csv")

    local_server.respond = echo
    source = local_server.url.replace("http://", "http://ops:Pa55-w0rd-echo@") + "/echo?securityToken=SECRETTOK999"
    with pytest.raises(UsageError, match="not a number") as refused:
        run(source, "--format", "csv")
    assert "SECRETTOK999" not in str(refused.value), str(refused.value)
    assert "/echo?" in str(refused.value)  # the rest of the quote is kept

    local_server.respond = lambda request: Reply(body=b"time,price_EUR_per_MWh\n2024-01-01,Pa55-w0rd-echo\n")
    with pytest.raises(UsageError) as refused:
        run(source, "--format", "csv")
    assert "Pa55-w0rd-echo" not in str(refused.value), str(refused.value)
