"""A credential a feed's endpoint echoes back never reaches a feed's error, whole or in part.

Feed errors become the RegionalCluster's PriceFeedStale/CarbonFeedStale condition and an Event, which
anyone who may read the cluster object sees; `gridshift.redaction` is the net under the parsers."""

from __future__ import annotations

import json

import pytest

from gridshift import redaction
from gridshift.api.carbon import CarbonBasis
from gridshift.signals.carbon import CarbonDataError
from gridshift.signals.carbon_feeds import parse_electricity_maps, parse_gb_carbon_intensity
from gridshift.signals.fields import finite_number
from gridshift.signals.prices import PriceDataError

TOKEN = "em-token-0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize(
    "body",
    [
        {"error": "x" * 160 + " invalid auth-token " + TOKEN},
        {"zone": "y" * 50 + TOKEN, "history": []},
    ],
)
def test_an_echoed_token_cut_short_leaves_no_part_of_it(body: dict[str, object]) -> None:
    # Found in review: the message was cut to 200 (64) characters before redaction, and the token's first
    # 20 characters left no longer matched the remembered value.
    redaction.remember(TOKEN)
    with pytest.raises(CarbonDataError) as refused:
        parse_electricity_maps(json.dumps(body).encode(), feed="em", basis=CarbonBasis.LIFECYCLE, expected_zone="DE")
    assert TOKEN[:8] not in str(refused.value), str(refused.value)


def test_an_echoed_token_in_the_gb_api_error_leaves_no_part_of_it() -> None:
    redaction.remember(TOKEN)
    body = {"error": {"message": "z" * 190 + TOKEN}}
    with pytest.raises(CarbonDataError) as refused:
        parse_gb_carbon_intensity(json.dumps(body).encode(), feed="gb")
    assert TOKEN[:8] not in str(refused.value), str(refused.value)


@pytest.mark.parametrize("password", ["pw\\Zq81-secret", "pw'Zq81\"secret", "pw\tZq81-secret", "pwé\u2028Zq81-se"])
def test_a_quoted_credential_is_redacted_whatever_it_holds(password: str) -> None:
    # Found in review: repr doubled a backslash, so the quoted value no longer matched the remembered one and
    # a header password echoed in a price field was quoted whole in the feed's error.
    redaction.remember_header("Bearer " + password)
    with pytest.raises(PriceDataError) as refused:
        finite_number("x", "items[0].price", password)
    assert "Zq81" not in str(refused.value), str(refused.value)
    assert "Zq81" not in redaction.redact(json.dumps({"price": password}))


@pytest.mark.parametrize("password", ["pa'ss\\word1", "pa'ssword-9", 'pa"ss\\word1'])
def test_a_credential_quoted_inside_a_longer_text_is_redacted(password: str) -> None:
    # Self-review: repr picks its quote by the whole text it shows, so a secret inside a message holding the
    # other quote has its own quote escaped, a form the value alone does not show.
    redaction.remember(password)
    for text in (repr({"error": 'bad token "' + password + '"'}), repr({"error": "bad token '" + password + "'"})):
        assert "ss" not in redaction.redact(text).replace("<redacted>", ""), redaction.redact(text)


def test_a_host_name_idna_cannot_encode_is_an_invalid_url_not_a_traceback() -> None:
    # Found in review: `a..b` failed in the resolver as a UnicodeError, a traceback from `gridshift prices`.
    import httpx

    from gridshift.signals.http import get_body
    from gridshift.signals.prices import PriceFetchError

    with httpx.Client() as http, pytest.raises(PriceFetchError, match="not a valid URL") as refused:
        get_body(http, "feed", "http://a..b/?securityToken=SECRET1234", timeout_seconds=5, max_body_bytes=1024)
    assert "SECRET1234" not in str(refused.value)


def test_a_number_written_with_underscores_is_not_a_price() -> None:
    # Found in review: Python's float() read "1_000" as 1000.
    with pytest.raises(PriceDataError, match="not a number: '1_000'"):
        finite_number("x", "items[0].price", "1_000")


def test_a_prometheus_error_body_echoing_a_token_leaves_no_part_of_it() -> None:
    # Self-review: the body was cut to 200 characters and never redacted, and MetricsError's text reaches status.
    from gridshift.signals.metrics import MetricsError, _explain_http_error

    redaction.remember(TOKEN)
    _, body = _explain_http_error("HTTP Status Code 400 (b'" + "q" * 190 + TOKEN + "')")
    assert TOKEN[:8] not in body, body
    assert TOKEN[:8] not in str(MetricsError("prom", "rate", f"refused: {TOKEN}", retryable=False))
