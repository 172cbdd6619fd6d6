"""Which ledger rows the books can match: a fill the venue answered incompletely (no price, no
quantity, a fee without its asset) is set apart with its reason; any other bad row is a problem."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.ledger.entries import LedgerFill, classify, incomplete_reason

D = Decimal
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def fill(n: int, quantity: str = "1", price: str = "100", fee: str = "0", fee_asset: str | None = "USDT", side="buy"):
    return LedgerFill(n, 1, "BTCUSDT", "BTC", "USDT", side, D(quantity), D(price), T0, D(fee), fee_asset)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (fill(1, price="0"), "no price"),
        (fill(1, price="-3"), "no price"),
        (fill(1, quantity="0"), "no quantity"),
        (fill(1, quantity="-1"), "no quantity"),
        (fill(1, fee="0.1", fee_asset=None), "fee without its asset"),
        (fill(1, fee="0.1", fee_asset=""), "fee without its asset"),
        (fill(1, price="0", fee="0.1", fee_asset=None), "no price"),  # the first thing missing is named
        (fill(1), None),
        (fill(1, fee="0", fee_asset=None), None),  # no fee: nothing is missing
        (fill(1, fee="0.001", fee_asset="BTC"), None),
        (fill(1, fee="0.01", fee_asset="BNB"), None),  # an asset with no price is reported as unvalued, not here
    ],
)
def test_what_the_venue_left_out_is_named(row, reason):
    assert incomplete_reason(row) == reason


def test_classify_sorts_the_fills_once_keeping_their_order():
    rows = [
        fill(1),
        fill(2, price="0"),
        fill(3, side="hold"),
        fill(4, fee="0.2", fee_asset=None),
        fill(5, side="sell"),
        fill(6, quantity="0.5", fee="0.5", fee_asset="BTC"),  # its base fee takes the whole quantity
    ]
    result = classify(iter(rows))
    assert [f.fill_id for f in result.usable] == [1, 5]
    assert [(i.fill.fill_id, i.reason) for i in result.incomplete] == [(2, "no price"), (4, "fee without its asset")]
    assert len(result.problems) == 2
    assert "fill #3" in result.problems[0] and "unknown side" in result.problems[0]
    assert "fill #6" in result.problems[1] and "takes the whole quantity" in result.problems[1]
    assert classify([]).usable == [] and classify([]).incomplete == [] and classify([]).problems == []
