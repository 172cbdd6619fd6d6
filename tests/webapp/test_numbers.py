"""One rule for numbers on every page: money in 2 decimals with thousands separators, prices on the symbol's
tick, quantities on its step (rounded down, dust as zero), changes in percent with their sign."""

from decimal import Decimal

import pytest

from webapp.numbers import MISSING, money, pct, places, price, qty

D = Decimal


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("46694.4852208"), "46,694.49"),
        (D("8969.75278611"), "8,969.75"),
        (D("-1234567.005"), "-1,234,567.00"),
        (D("-0.001"), "0.00"),  # never "-0.00"
        (1234567, "1,234,567.00"),
        (None, MISSING),
    ],
)
def test_money_has_two_decimals_and_thousands_separators(value, text):
    assert money(value) == text


@pytest.mark.parametrize(
    ("value", "tick", "text"),
    [
        (D("46190.44000000"), D("0.01"), "46,190.44"),
        (D("0.123456"), D("0.0001000"), "0.1235"),
        (D("5E+1"), D("0.10"), "50.0"),
        (D("51000"), D("10"), "51,000"),
        (D("46190.4400"), None, "46,190.44"),  # no rules stored: the value's own digits
        (None, D("0.01"), MISSING),
    ],
)
def test_prices_follow_the_tick(value, tick, text):
    assert price(value, tick) == text


@pytest.mark.parametrize(
    ("value", "step", "text"),
    [
        (D("0.12345678"), D("0.001"), "0.123"),  # rounded down: never more than held
        (D("0.0000004"), D("0.00001"), "0"),  # dust below the step
        (D("5E+1"), D("1"), "50"),
        (D("-0.0199"), D("0.01"), "-0.01"),
        (D("1500.5"), None, "1,500.5"),
    ],
)
def test_quantities_follow_the_step(value, step, text):
    assert qty(value, step) == text


def test_percentages_carry_their_sign_and_increments_their_places():
    assert [pct(D("1.2345")), pct(D("-2.5")), pct(D("0.001")), pct(None)] == ["+1.23%", "-2.50%", "0.00%", MISSING]
    assert [places(D("0.00001000")), places(D("1")), places(D("10")), places(None), places(D(0))] == [
        5,
        0,
        0,
        None,
        None,
    ]
