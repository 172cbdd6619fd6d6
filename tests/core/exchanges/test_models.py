"""Order shapes are checked where they are built, with a message saying what is missing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.exchanges.errors import InvalidOrder
from core.exchanges.models import OcoRequest, OrderRequest, oco_leg_ids


def order(**over):
    fields = {
        "client_order_id": "ab-1",
        "symbol": "BTCUSDT",
        "side": "buy",
        "type": "limit",
        "quantity": Decimal("1"),
        "price": Decimal("100"),
    }
    return OrderRequest(**(fields | over))


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"quantity": 1.5}, "quantity must be a finite Decimal"),
        ({"quantity": Decimal("-1")}, "quantity must be positive"),
        ({"quantity": Decimal("NaN")}, "finite Decimal"),
        ({"price": None}, "a limit order needs a price"),
        ({"quote_quantity": Decimal(5)}, "exactly one of quantity or quote_quantity"),
        ({"side": "long"}, "side must be"),
        ({"type": "trailing"}, "unknown order type"),
        ({"type": "stop_loss", "price": None}, "needs a stop_price"),
        ({"type": "market", "price": Decimal(1)}, "takes no limit price"),
        ({"client_order_id": ""}, "client_order_id is required"),
        ({"symbol": ""}, "symbol is required"),
    ],
)
def test_malformed_orders_are_refused(over, reason):
    with pytest.raises(InvalidOrder, match=reason):
        order(**over)


def test_oco_legs_are_derived_from_its_client_id():
    oco = OcoRequest(
        client_order_id="ab-7",
        symbol="BTCUSDT",
        side="sell",
        quantity=Decimal(1),
        limit_price=Decimal(110),
        stop_price=Decimal(90),
        stop_limit_price=Decimal(89),
    )
    tp, sl = oco.take_profit_leg(), oco.stop_loss_leg()
    assert (tp.client_order_id, sl.client_order_id) == oco_leg_ids("ab-7") == ("ab-7-tp", "ab-7-sl")
    assert (tp.type, tp.price) == ("limit", Decimal(110))
    assert (sl.type, sl.stop_price, sl.price) == ("stop_loss_limit", Decimal(90), Decimal(89))


def test_oco_prices_must_bracket_the_market():
    with pytest.raises(InvalidOrder, match="sell OCO needs its limit above the stop"):
        OcoRequest(
            client_order_id="a",
            symbol="X",
            side="sell",
            quantity=Decimal(1),
            limit_price=Decimal(90),
            stop_price=Decimal(110),
        )
    OcoRequest(
        client_order_id="a",
        symbol="X",
        side="buy",
        quantity=Decimal(1),
        limit_price=Decimal(90),
        stop_price=Decimal(110),
    )
