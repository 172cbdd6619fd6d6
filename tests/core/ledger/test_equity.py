"""Equity from stored balances and the fills since them, and its curve walked back through the fills."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from core.ledger.entries import LedgerFill
from core.ledger.equity import (
    CURVE_POINTS,
    Baseline,
    Equity,
    Move,
    current_balances,
    curve,
    curve_timeframe,
    fill_moves,
    valued,
)

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _fill(side: str, quantity: str, price: str, minutes: int, fee: str = "0", fee_asset: str | None = None):
    at = T0 + timedelta(minutes=minutes)
    return LedgerFill(1, 1, "BTCUSDT", "BTC", "USDT", side, D(quantity), D(price), at, D(fee), fee_asset)


def test_a_fill_moves_the_base_by_what_is_held_the_quote_by_its_cash_and_another_fee_asset_by_its_fee():
    base_fee = fill_moves(_fill("buy", "1", "100", 1, "0.001", "BTC"))
    assert [(m.asset, m.delta) for m in base_fee] == [("BTC", D("0.999")), ("USDT", D("-100"))]
    bnb_fee = fill_moves(_fill("sell", "1", "100", 1, "0.01", "BNB"))
    assert [(m.asset, m.delta) for m in bnb_fee] == [("BTC", D("-1")), ("USDT", D("100")), ("BNB", D("-0.01"))]


def test_balances_are_the_baselines_moved_by_the_fills_after_each():
    baselines = [Baseline("USDT", D("1000"), T0 + timedelta(minutes=5)), Baseline("BTC", D("0"), T0)]
    moves = [m for f in (_fill("buy", "1", "100", 3), _fill("buy", "2", "100", 7)) for m in fill_moves(f)]
    # USDT's baseline was read after the first buy: only the second one moves it; BTC moves by both.
    assert current_balances(baselines, moves) == {"USDT": D("800"), "BTC": D("3")}
    assert current_balances([], moves) == {}  # never read: nothing is known


def test_value_leaves_out_what_has_no_price_and_the_curve_walks_back_through_the_fills():
    total, unvalued = valued(
        {"USDT": D("800"), "BTC": D("3"), "XYZ": D("5"), "ETH": D("0")}, {"USDT": D(1), "BTC": D(110)}.get
    )
    assert (total, unvalued) == (D("1130"), ["XYZ"])
    moves = fill_moves(_fill("buy", "3", "100", 10))
    prices = {"USDT": lambda t: D(1), "BTC": lambda t: D(100) if t < 15 * 60_000 else D(120)}
    start = int(T0.timestamp() * 1000)
    points = curve(
        {"USDT": D("700"), "BTC": D("3")},
        moves,
        [start + 5 * 60_000, start + 20 * 60_000],
        lambda a, t: prices[a](t - start),
    )
    assert points == [(start + 5 * 60_000, D("1000")), (start + 20 * 60_000, D("1060"))]
    assert curve({"USDT": D(1)}, [Move(T0, "USDT", D(1))], [], lambda a, t: D(1)) == []


def test_the_curve_takes_the_finest_timeframe_that_fits_and_equity_sums_the_brokers_read():
    frames = {"1m": 60_000, "1h": 3_600_000, "4h": 14_400_000}
    assert curve_timeframe(60_000 * CURVE_POINTS, frames) == "1m"
    assert curve_timeframe(60_000 * CURVE_POINTS + 1, frames) == "1h"
    assert curve_timeframe(10**12, frames) == "4h"
    equity = Equity(by_broker={1: D("10.5"), 2: None, 3: D("1")})
    assert equity.total == D("11.5")  # a broker never read counts for nothing
