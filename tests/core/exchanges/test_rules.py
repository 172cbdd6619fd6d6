"""Rounding onto the symbol grid always favours the trader; bad orders get a clear reason."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.exchanges.errors import InvalidOrder
from core.exchanges.models import OrderRequest, SymbolRules
from core.exchanges.rules import decimal_str, round_and_validate

RULES = SymbolRules(
    symbol="BTCUSDT",
    base="BTC",
    quote="USDT",
    tick_size=Decimal("0.01"),
    step_size=Decimal("0.00001"),
    min_qty=Decimal("0.0001"),
    min_notional=Decimal("5"),
    order_types=frozenset({"market", "limit", "stop_loss_limit"}),
    max_qty=Decimal("9000"),
)

quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("100"), places=9)
prices = st.decimals(min_value=Decimal("10000"), max_value=Decimal("90000"), places=6)


def limit(side: str, qty: Decimal, price: Decimal) -> OrderRequest:
    return OrderRequest(client_order_id="ab-1", symbol="BTCUSDT", side=side, type="limit", quantity=qty, price=price)


@given(quantities, prices, st.sampled_from(["buy", "sell"]))
def test_rounded_order_sits_on_the_grid_and_never_worse_for_the_trader(qty, price, side):
    order = round_and_validate(limit(side, qty, price), RULES)
    assert order.quantity % RULES.step_size == 0 and order.price % RULES.tick_size == 0
    assert qty - RULES.step_size < order.quantity <= qty
    if side == "buy":
        assert price - RULES.tick_size < order.price <= price
    else:
        assert price <= order.price < price + RULES.tick_size


@given(quantities, prices)
def test_rounding_is_idempotent(qty, price):
    once = round_and_validate(limit("buy", qty, price), RULES)
    assert round_and_validate(once, RULES) == once


@pytest.mark.parametrize(
    ("order", "reason"),
    [
        (
            limit("buy", Decimal("0.000001"), Decimal("30000")),
            "quantity 0.000001 rounds to 0 at the BTCUSDT step 0.00001",
        ),
        (limit("buy", Decimal("0.00005"), Decimal("30000")), "quantity 0.00005 is below the BTCUSDT minimum 0.0001"),
        (limit("buy", Decimal("10000"), Decimal("30000")), "above the BTCUSDT maximum 9000"),
        (
            limit("buy", Decimal("0.0001"), Decimal("30000")),
            "order value 3 USDT is below the BTCUSDT minimum notional 5",
        ),
        (limit("buy", Decimal("1"), Decimal("0.001")), "price 0.001 rounds to 0 at the BTCUSDT tick 0.01"),
        (
            OrderRequest(
                client_order_id="x",
                symbol="BTCUSDT",
                side="sell",
                type="take_profit",
                quantity=Decimal(1),
                stop_price=Decimal(1),
            ),
            "does not accept take_profit orders",
        ),
        (
            OrderRequest(client_order_id="x", symbol="ETHUSDT", side="sell", type="market", quantity=Decimal(1)),
            "order is for ETHUSDT but the rules are for BTCUSDT",
        ),
    ],
)
def test_bad_orders_are_refused_with_the_reason(order, reason):
    with pytest.raises(InvalidOrder, match=reason):
        round_and_validate(order, RULES)


def test_market_orders_checked_against_notional_with_a_reference_price():
    market = OrderRequest(client_order_id="x", symbol="BTCUSDT", side="sell", type="market", quantity=Decimal("0.0001"))
    assert round_and_validate(market, RULES).quantity == Decimal("0.0001")  # no price known: cannot judge
    with pytest.raises(InvalidOrder, match="minimum notional"):
        round_and_validate(market, RULES, reference_price=Decimal("30000"))
    quote = OrderRequest(client_order_id="x", symbol="BTCUSDT", side="buy", type="market", quote_quantity=Decimal("4"))
    with pytest.raises(InvalidOrder, match="order value 4 USDT"):
        round_and_validate(quote, RULES)


def test_halted_symbol_is_refused():
    halted = SymbolRules(**{**RULES.__dict__, "trading": False})
    with pytest.raises(InvalidOrder, match="not trading"):
        round_and_validate(limit("buy", Decimal(1), Decimal(30000)), halted)


def test_decimal_str_never_uses_exponents():
    assert [decimal_str(Decimal(x)) for x in ("1E+1", "0.50", "1E-8", "30000.00")] == [
        "10",
        "0.5",
        "0.00000001",
        "30000",
    ]
