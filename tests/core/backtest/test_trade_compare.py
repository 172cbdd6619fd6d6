"""Pairing a bot's fills into round trips and comparing them with the backtest's trades (bench parity)."""

from decimal import Decimal
from pathlib import Path

import pytest

from core.backtest.trade_compare import RULES, LiveFill, TradeView, compare, live_trades, rule_of

T0 = 1_747_699_200_000
M = 60_000


def fill(side, order_type, ms, price, qty, order_id) -> LiveFill:
    return LiveFill(side, order_type, ms, Decimal(price), Decimal(qty), order_id)


def test_fills_become_round_trips_with_their_candles_prices_and_exit_reasons():
    fills = [
        fill("buy", "market", T0 + M + 5_000, "100", "0.4", 1),
        fill("buy", "market", T0 + M + 6_000, "102", "0.6", 1),  # one order, two fills: one entry at the VWAP
        fill("sell", "market", T0 + 4 * M + 3_000, "110", "1", 2),
        fill("buy", "market", T0 + 6 * M + 3_000, "100", "1", 3),
        fill("sell", "oco", T0 + 7 * M + 40_000, "99", "1", 4),
        fill("buy", "market", T0 + 9 * M + 3_000, "100", "1", 5),
        fill("sell", "oco", T0 + 9 * M + 50_000, "101", "1", 6),
        fill("buy", "market", T0 + 11 * M + 3_000, "100", "1", 7),
        fill("sell", "trailing_stop", T0 + 12 * M + 30_000, "104", "1", 8),  # a trailing stop in profit
        fill("buy", "market", T0 + 13 * M + 3_000, "100", "1", 9),
    ]
    trades = live_trades(fills)
    assert [(t.entry_ms, t.exit_ms, t.exit_reason) for t in trades] == [
        (T0 + M, T0 + 4 * M, "signal"),
        (T0 + 6 * M, T0 + 7 * M, "stop_loss"),
        (T0 + 9 * M, T0 + 9 * M, "take_profit"),
        (T0 + 11 * M, T0 + 12 * M, "trailing_stop"),
        (T0 + 13 * M, None, "open"),
    ]
    assert trades[0].entry_price == 101.2 and trades[0].quantity == 1.0


def test_a_ladders_partial_sells_are_trades_of_their_own_and_its_stop_legs_one_exit():
    fills = [
        fill("buy", "market", T0 + M + 3_000, "100", "1", 1),
        fill("sell", "limit", T0 + 2 * M + 20_000, "102", "0.5", 2),  # the first rung
        fill("sell", "limit", T0 + 3 * M + 20_000, "105", "0.5", 3),  # the second closes the position
        fill("buy", "market", T0 + 5 * M + 3_000, "100", "1", 4),
        fill("sell", "oco", T0 + 6 * M + 20_000, "102", "0.4", 5),  # a rung's target
        fill("sell", "oco", T0 + 7 * M + 30_000, "98", "0.3", 6),  # the stop legs of the other two rungs
        fill("sell", "oco", T0 + 7 * M + 30_000, "98", "0.2999", 7),
    ]
    trades = live_trades(fills)
    assert [(t.entry_ms, t.exit_ms, t.exit_reason, t.exit_price) for t in trades] == [
        (T0 + M, T0 + 2 * M, "take_profit", 102),
        (T0 + M, T0 + 3 * M, "take_profit", 105),
        (T0 + 5 * M, T0 + 6 * M, "take_profit", 102),
        (T0 + 5 * M, T0 + 7 * M, "stop_loss", 98),
    ]
    assert [t.quantity for t in trades] == pytest.approx([0.5, 0.5, 0.4, 0.6])


def test_trades_match_within_the_tolerances_and_each_difference_is_named():
    test = [
        TradeView("long", T0, 100.0, 1.0, T0 + 3 * M, 110.0, "signal"),
        TradeView("long", T0 + 5 * M, 100.0, 1.0, T0 + 6 * M, 99.0, "stop_loss"),
        TradeView("long", T0 + 8 * M, 100.0, 1.0, T0 + 9 * M, 120.0, "end_of_data"),
    ]
    live = [
        TradeView("long", T0, 100.02, 1.001, T0 + 3 * M, 109.99, "signal"),
        TradeView("long", T0 + 5 * M, 100.0, 1.0, T0 + 7 * M, 99.0, "stop_loss"),
        TradeView("long", T0 + 8 * M, 100.0, 1.0),  # still held when the file ended
    ]
    result = compare(live, test, price_tolerance_bps=5, qty_tolerance=0.005)
    assert result.mismatched == 1
    assert result.details[0]["differences"] == [f"exit candle {T0 + 7 * M} vs {T0 + 6 * M}"]
    assert result.worst_entry_bps == 2.0


def test_a_trade_on_one_side_only_is_a_mismatch_and_the_rest_still_pairs():
    test = [TradeView("long", T0 + 2 * M, 100.0, 1.0, T0 + 3 * M, 101.0, "signal")]
    live = [
        TradeView("long", T0, 100.0, 1.0, T0 + M, 100.0, "signal"),
        TradeView("long", T0 + 2 * M, 100.0, 1.0, T0 + 3 * M, 101.0, "signal"),
        TradeView("long", T0 + 5 * M, 100.0, 1.0),
    ]
    result = compare(live, test, price_tolerance_bps=5, qty_tolerance=0.005)
    assert result.mismatched == 2
    assert [d["differences"] for d in result.details] == [["live only"], ["live only"]]
    assert compare([], test, price_tolerance_bps=5, qty_tolerance=0.005).details[0]["differences"] == [
        "in the backtest only"
    ]


def test_every_pair_is_a_row_and_each_difference_names_its_metrics_rule():
    test = [
        TradeView("long", T0, 100.0, 1.0, T0 + M, 101.0, "signal"),
        TradeView("long", T0 + 2 * M, 100.0, 1.0, T0 + 3 * M, 101.0, "signal"),
        TradeView("long", T0 + 4 * M, 100.0, 1.0, T0 + 5 * M, 101.0, "signal"),
    ]
    live = [
        TradeView("long", T0, 100.0, 1.0, T0 + M, 101.0, "signal"),
        TradeView("long", T0 + 2 * M, 100.0, 1.1, T0 + 3 * M, 102.0, "signal"),
        TradeView("long", T0 + 4 * M, 100.0, 1.0),
    ]
    result = compare(live, test, price_tolerance_bps=5, qty_tolerance=0.005)
    assert [row["differences"] for row in result.rows] == [
        [],
        ["quantity 1.1 vs 1", "exit price 102 vs 101"],
        [f"still open live, closed by signal at {T0 + 5 * M} in the backtest"],
    ]
    assert result.details == result.rows[1:] and result.mismatched == 2
    named = [rule_of(d) for row in result.rows for d in row["differences"]]
    assert named == ["Sizing", "Slippage", "The end of the file"]
    assert rule_of("live only") == rule_of("in the backtest only") == "A match (trades pair by entry candle)"
    assert rule_of("entry candle 1 vs 2") == "A match"
    # Every rule named is a heading of docs/METRICS.md's parity section.
    metrics = (Path(__file__).parents[3] / "docs" / "METRICS.md").read_text()
    assert all(f"**{rule.split(' (')[0]}" in metrics for rule in RULES.values())
