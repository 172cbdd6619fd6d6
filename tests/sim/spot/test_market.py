"""The synthetic market is a pure function of its seed, and its candles agree at every interval."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from sim.spot.market import LISTING_SECOND, Book, SyntheticMarket

NOW_MS = 1_795_000_000_000  # a fixed "now" keeps these tests independent of the wall clock
MARKET = SyntheticMarket(seed=42)


def test_same_seed_same_trades_other_seed_other_trades():
    again, other = SyntheticMarket(seed=42), SyntheticMarket(seed=43)
    second = NOW_MS // 1000 - 12_345
    assert MARKET.trade("BTCUSDT", second) == again.trade("BTCUSDT", second)
    assert MARKET.trade("BTCUSDT", second).price != other.trade("BTCUSDT", second).price


def test_history_is_continuous_across_midnight():
    midnight = (NOW_MS // 1000 // 86_400) * 86_400
    before, after = MARKET.trade("ETHUSDT", midnight - 1).price, MARKET.trade("ETHUSDT", midnight).price
    assert abs(after / before - 1) < Decimal("0.01")


def test_a_market_of_twenty_symbols_keeps_each_symbols_day_between_its_seconds():
    """Each second trades every symbol: with many symbols, a day drawn for one must still be there at its
    next second (a cache of 8 days once evicted them all, so every trade drew a whole day again)."""
    base = SyntheticMarket().symbols["BTCUSDT"]
    specs = tuple(replace(base, symbol=f"S{i:02d}USDT", base=f"S{i:02d}") for i in range(20))
    market = SyntheticMarket(seed=3, symbols=specs)
    second = LISTING_SECOND + 10 * 86_400 + 3_600
    first = {spec.symbol: market._day(spec.symbol, second // 86_400) for spec in specs}
    for offset in range(3):
        for spec in specs:
            market.trade(spec.symbol, second + offset)
    assert all(market._day(symbol, second // 86_400) is day for symbol, day in first.items())


def test_no_candles_before_listing():
    rows = MARKET.klines("BTCUSDT", "1h", now_ms=NOW_MS, end_ms=LISTING_SECOND * 1000 - 1)
    assert rows == []
    first = MARKET.klines("BTCUSDT", "1d", now_ms=NOW_MS, start_ms=0, limit=1)
    assert first[0].open_time == LISTING_SECOND * 1000


def test_the_open_candle_is_partial_and_the_others_closed():
    rows = MARKET.klines("SOLUSDT", "1m", now_ms=NOW_MS // 60_000 * 60_000 + 30_500, limit=3)
    assert [r.closed for r in rows] == [True, True, False]
    assert rows[-1].trades == 31 and rows[0].trades == 60


@settings(max_examples=25, deadline=None)
@given(minute_offset=st.integers(0, 60 * 24 * 20), interval=st.sampled_from(["3m", "5m", "15m", "1h", "4h"]))
def test_longer_candles_aggregate_the_one_minute_candles(minute_offset, interval):
    minutes = {"3m": 3, "5m": 5, "15m": 15, "1h": 60, "4h": 240}[interval]
    span = minutes * 60_000
    open_ms = ((NOW_MS - 21 * 86_400_000 + minute_offset * 60_000) // span) * span
    (big,) = MARKET.klines("BTCUSDT", interval, now_ms=NOW_MS, start_ms=open_ms, limit=1)
    small = MARKET.klines("BTCUSDT", "1m", now_ms=NOW_MS, start_ms=open_ms, limit=minutes)
    assert big.open == small[0].open and big.close == small[-1].close
    assert big.high == max(c.high for c in small) and big.low == min(c.low for c in small)
    assert big.volume == sum(c.volume for c in small) and big.quote_volume == sum(c.quote_volume for c in small)
    assert big.trades == sum(c.trades for c in small) == minutes * 60
    assert big.first_trade_id == small[0].first_trade_id and big.last_trade_id == small[-1].last_trade_id


@settings(max_examples=25, deadline=None)
@given(second_offset=st.integers(0, 86_400 * 3))
def test_a_candle_is_made_of_its_trades(second_offset):
    second = NOW_MS // 1000 - second_offset
    minute = second // 60 * 60
    trades = [MARKET.trade("BTCUSDT", s) for s in range(minute, minute + 60)]
    candle = MARKET.candle("BTCUSDT", "1m", minute * 1000, minute + 59)
    assert candle.closed and candle.open == trades[0].price and candle.close == trades[-1].price
    assert candle.high == max(t.price for t in trades) and candle.volume == sum(t.qty for t in trades)
    assert candle.taker_buy_volume == sum(t.qty for t in trades if not t.buyer_is_maker)


def test_volatility_regimes_change_within_days():
    """Hourly ranges differ by regime: the widest hour of a day is several times the calmest."""
    rows = MARKET.klines("BTCUSDT", "1h", now_ms=NOW_MS, end_ms=NOW_MS - 86_400_000, limit=24 * 7)
    ranges = sorted((r.high - r.low) / r.open for r in rows)
    assert ranges[-1] > 4 * ranges[0]


def test_book_update_ids_chain_and_sides_never_cross():
    book = Book(MARKET.symbols["BTCUSDT"], seed=42)
    last_id = 0
    for second in range(NOW_MS // 1000, NOW_MS // 1000 + 30):
        first, last, _, _ = book.rebuild(MARKET.price_ticks("BTCUSDT", second), second)
        assert first == last_id + 1 and last >= first
        last_id = last
        bids, asks = book.sides(50)
        assert bids[0][0] < MARKET.trade("BTCUSDT", second).price < asks[0][0] or bids[0][0] < asks[0][0]
        assert len(bids) == len(asks) == 50
