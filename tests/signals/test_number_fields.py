"""A number written as text in a feed's answer or an input file is read strictly (gridshift.numerals): what
Python's float() and int() read beyond plain decimal notation is refused, and every plain number reads as float()
reads it; a feed's field (signals.fields.finite_number) says so naming the field."""

from __future__ import annotations

import pytest

from gridshift.numerals import NotFinite, TooLarge, plain_integer, plain_number
from gridshift.signals.fields import finite_number
from gridshift.signals.prices import PriceDataError

PLAIN = ["0", "60.56", "-127.5", "+5", ".5", "5.", "1e3", "1E-3", "-2.5e+2", "007", "9" * 300]


@pytest.mark.parametrize("text", PLAIN)
def test_a_plain_number_reads_as_float_reads_it(text: str) -> None:
    assert plain_number(text) == float(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1_0", "not a number"),  # float(): 10.0
        (" 12 ", "not a number"),  # float(): 12.0
        ("12\n", "not a number"),  # float(): 12.0; a regex's $ matches before a final newline
        ("１２", "not a number"),  # full-width digits; float(): 12.0
        ("٦٠", "not a number"),  # Arabic-Indic digits; float(): 60.0
        ("0x10", "not a number"),
        ("", "not a number"),
        (".", "not a number"),
        ("1e", "not a number"),
        ("nan", "not a finite number"),
        ("-NaN", "not a finite number"),
        ("inf", "not a finite number"),
        ("-Infinity", "not a finite number"),
        ("1e999", "not a finite number"),  # float(): inf
        ("9" * 400, "not a finite number"),
    ],
)
def test_anything_else_float_reads_is_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=rf"^{reason}$"):
        plain_number(text)


@pytest.mark.parametrize(
    ("text", "kind"), [("nan", NotFinite), ("-inf", NotFinite), ("1e999", TooLarge), ("-1e400", TooLarge)]
)
def test_a_number_beyond_any_float_is_told_apart_from_nan_and_infinities(text: str, kind: type[ValueError]) -> None:
    # The simulator says a count of "1e400" tokens is more than any model's context, not that it is not finite.
    with pytest.raises(NotFinite, match=r"^not a finite number$") as caught:
        plain_number(text)
    assert type(caught.value) is kind


@pytest.mark.parametrize("text", ["1", "24", "+3", "-1", "0012"])
def test_a_plain_integer_reads_as_int_reads_it(text: str) -> None:
    assert plain_integer(text) == int(text)


@pytest.mark.parametrize("text", ["1_2", " 12", "12\n", "１２", "٦", "12.0", "1e2", "", "+"])
def test_anything_else_is_not_an_integer(text: str) -> None:
    with pytest.raises(ValueError, match=r"^not an integer$"):
        plain_integer(text)


@pytest.mark.parametrize(("value", "words"), [("1_000", "not a number: '1_000'"), ("１２", "not a number: '１２'")])
def test_a_feeds_numeric_string_is_refused_naming_the_field(value: str, words: str) -> None:
    with pytest.raises(PriceDataError) as caught:
        finite_number("f", "items[3].price", value)
    assert (caught.value.field, caught.value.detail) == ("items[3].price", words)
