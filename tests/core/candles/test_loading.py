import secrets
from decimal import Decimal

import pytest

from bench.data import data_dir
from core.candles.csv_io import CandleFileError
from core.candles.loading import (
    ImportRefused,
    LoadError,
    download_candles,
    import_candles_file,
    import_candles_text,
)
from core.candles.store import load_candles
from core.exchanges.spot.registry import make_exchange
from core.infra.db import get_engine

HEADER = "open_time,open,high,low,close,volume"
T0 = 1_735_689_600_000
MINUTE = 60_000


def symbol() -> str:
    return "X" + secrets.token_hex(4).upper()


def stored(venue, sym, tf):
    with get_engine().connect() as conn:
        return load_candles(conn, venue, sym, tf)


def row(i: int, price: float = 100.0) -> str:
    return f"{T0 + i * MINUTE},{price},{price + 1},{price - 1},{price + 0.5},1.25"


def test_real_hourly_file_imports_once_with_its_known_gaps(infra):
    sym = symbol()
    first = import_candles_file(data_dir() / "BTCUSDT-1h.csv", venue="binance", symbol=sym)
    assert (first.rows, first.added, first.duplicates) == (58_419, 58_419, 0)
    assert len(first.gaps) == 28 and sum(g.missing for g in first.gaps) == 128  # as the data README lists
    assert first.timeframe == "1h" and first.bad_rows == []
    again = import_candles_file(data_dir() / "BTCUSDT-1h.csv", venue="binance", symbol=sym)
    assert (again.added, again.duplicates) == (0, 58_419)
    candles = stored("binance", sym, "1h")
    assert candles[0].open == Decimal("4261.48") and candles[0].open_time == 1502942400000


def test_bad_rows_are_reported_by_line_and_the_import_stores_nothing(infra):
    sym = symbol()
    text = (
        "\n".join(
            [
                HEADER,  # line 1
                row(0),  # 2
                "abc,1,2,3,4,5",  # 3: not a number
                row(1),  # 4
                row(2) + ",extra",  # 5: too many fields
                f"{T0 + 3 * MINUTE},100,90,95,99,1",  # 6: high below open
                row(3),  # 7
                "",  # 8: blank, ignored
                row(3),  # 9: duplicate
                row(2),  # 10: back in time
                f"{T0 + 4 * MINUTE + 7},100,101,99,100,1",  # 11: not on a minute
                row(6),  # 12: after a gap of two minutes
            ]
        )
        + "\n"
    )
    with pytest.raises(ImportRefused) as refused:
        import_candles_text(text, venue="binance", symbol=sym, timeframe="1m", source="bad.csv")
    bad = refused.value.report.bad_rows
    assert [b.line for b in bad] == [3, 5, 6, 9, 10, 11]
    assert "not a finite number" in bad[0].error and "high/low" in bad[2].error
    assert str(refused.value).startswith(
        "bad.csv: nothing imported, 6 row(s) refused, the first at line 3: open_time is not"
    )
    assert (refused.value.report.rows, refused.value.report.added) == (4, 0)
    assert stored("binance", sym, "1m") == []
    good = "\n".join([HEADER, row(0), row(1), row(3), row(6)])
    report = import_candles_text(good, venue="binance", symbol=sym, timeframe="1m")
    assert (report.rows, report.added) == (4, 4)
    assert [g.missing for g in report.gaps] == [1, 2]  # minute 2, minutes 4-5


def test_bad_rows_in_every_chunk_of_a_large_file_are_all_named(infra):
    sym = symbol()
    lines = [HEADER] + [row(i) if i % 1500 else "oops" for i in range(1, 6001)]
    with pytest.raises(ImportRefused) as refused:
        import_candles_text("\n".join(lines), venue="binance", symbol=sym, timeframe="1m")
    assert [b.line for b in refused.value.report.bad_rows] == [1 + i for i in (1500, 3000, 4500, 6000)]
    assert stored("binance", sym, "1m") == []


def test_a_candle_not_closed_or_in_the_future_refuses_the_file_naming_its_line(infra):
    sym = symbol()
    now = T0 + 10 * MINUTE + 30_000  # half-way through minute 10
    text = "\n".join([HEADER] + [row(i) for i in range(12)])
    with pytest.raises(ImportRefused) as refused:
        import_candles_text(text, venue="binance", symbol=sym, timeframe="1m", now_ms=now)
    assert [(b.line, b.error.split(" (")[0]) for b in refused.value.report.bad_rows] == [
        (12, "the candle at 2025-01-01 00:10 UTC is not closed yet"),
        (13, f"open_time {T0 + 11 * MINUTE}"),
    ]
    assert "lies in the future" in refused.value.report.bad_rows[1].error
    assert stored("binance", sym, "1m") == []
    report = import_candles_text(
        "\n".join([HEADER] + [row(i) for i in range(10)]), venue="binance", symbol=sym, timeframe="1m", now_ms=now
    )
    assert report.added == 10, "the candle of minute 9 closed at the start of minute 10"


def test_a_row_that_differs_from_a_stored_candle_refuses_the_file_and_identical_ones_are_duplicates(infra):
    sym = symbol()
    import_candles_text("\n".join([HEADER] + [row(i) for i in range(3)]), venue="binance", symbol=sym, timeframe="1m")
    changed = "\n".join([HEADER, row(1), row(2, price=90.0), row(3)])
    with pytest.raises(ImportRefused) as refused:
        import_candles_text(changed, venue="binance", symbol=sym, timeframe="1m", source="edited.csv")
    [conflict] = refused.value.report.bad_rows
    assert conflict.line == 3
    assert conflict.error == (
        "conflicts with the stored candle at 2025-01-01 00:02 UTC "
        "(stored o/h/l/c/v 100/101/99/100.5/1.25, file 90/91/89/90.5/1.25)"
    )
    assert [c.open_time for c in stored("binance", sym, "1m")] == [T0, T0 + MINUTE, T0 + 2 * MINUTE]
    again = import_candles_text(
        "\n".join([HEADER, row(1), row(2), row(3)]), venue="binance", symbol=sym, timeframe="1m"
    )
    assert (again.rows, again.added, again.duplicates) == (3, 1, 2)


def test_values_beyond_what_the_store_holds_are_refused_rows_not_database_errors(infra):
    sym = symbol()
    text = "\n".join([HEADER, row(0), f"{T0 + MINUTE},1e300,1e300,1e300,1e300,1", f"{10**300},1,1,1,1,1"])
    with pytest.raises(ImportRefused) as refused:
        import_candles_text(text, venue="binance", symbol=sym, timeframe="1m")
    assert [b.line for b in refused.value.report.bad_rows] == [3, 4]
    assert "beyond what a candle holds" in refused.value.report.bad_rows[0].error


def test_binance_dump_without_header_in_microseconds(infra):
    sym = symbol()
    dump = "\n".join(
        f"{(T0 + i * MINUTE) * 1000},1.5,2,1,1.75,10,{(T0 + i * MINUTE + 59_999) * 1000},0,5,0,0,0" for i in range(5)
    )
    report = import_candles_text(dump, venue="binance", symbol=sym, timeframe="1m")
    assert report.added == 5
    assert [c.close for c in stored("binance", sym, "1m")] == [Decimal("1.75")] * 5


@pytest.mark.parametrize(
    ("text", "timeframe", "error"),
    [
        ("", "1m", "empty"),
        (HEADER + "\n", "1m", "only a header"),
        ("time,o,h,l,c\n1,2,3,4,5\n", "1m", "header lacks"),
        (HEADER + "\n" + "\n".join(row(i * 60) for i in range(3)), "1m", "holds 1h candles, not 1m"),
    ],
)
def test_unusable_files_are_refused_with_a_clear_error(infra, text, timeframe, error):
    with pytest.raises((LoadError, CandleFileError), match=error):
        import_candles_text(text, venue="binance", symbol=symbol(), timeframe=timeframe)


@pytest.mark.parametrize(
    ("venue", "sym", "tf", "error"),
    [
        ("nowhere", "BTCUSDT", "1m", "unknown venue"),
        ("binance", "btc-usdt", "1m", "symbol"),
        ("binance", "BTCUSDT", "2m", "unknown timeframe"),
    ],
)
def test_bad_targets_are_refused(infra, venue, sym, tf, error):
    with pytest.raises(LoadError, match=error):
        import_candles_text(HEADER + "\n" + row(0), venue=venue, symbol=sym, timeframe=tf)


def test_missing_file_needs_no_traceback(tmp_path):
    with pytest.raises(LoadError, match="cannot read"):
        import_candles_file(tmp_path / "BTCUSDT-1m.csv", venue="binance")
    with pytest.raises(LoadError, match="--symbol"):
        import_candles_file(tmp_path / "prices.csv", venue="binance")


def test_download_pages_through_the_venue_and_is_idempotent(sim, infra, redis_client):
    start, end = T0, T0 + 2499 * MINUTE
    progress = []
    first = download_candles(
        "sim",
        "ETHUSDT",
        "1m",
        start,
        end,
        exchange=make_exchange("sim", api_key="", api_secret="", base_url=sim.url),
        progress=lambda done, total, _: progress.append((done, total)),
    )
    assert (first.rows, first.added) == (2500, 2500) and first.gaps == []
    assert progress[-1] == (2500, 2500) and len(progress) == 3  # three pages of up to 1000
    theirs = make_exchange("sim", api_key="", api_secret="", base_url=sim.url).klines(
        "ETHUSDT", "1m", start_ms=start + 1000 * MINUTE, end_ms=start + 1009 * MINUTE, limit=10
    )
    mine = [c for c in stored("sim", "ETHUSDT", "1m") if start + 1000 * MINUTE <= c.open_time <= start + 1009 * MINUTE]
    assert [(c.open_time, c.close, c.volume) for c in mine] == [(k.open_time_ms, k.close, k.volume) for k in theirs]
    again = download_candles(
        "sim", "ETHUSDT", "1m", start, end, exchange=make_exchange("sim", api_key="", api_secret="", base_url=sim.url)
    )
    assert (again.rows, again.added, again.duplicates) == (2500, 0, 2500)


def test_an_interrupted_download_resumes_where_it_stopped(sim, infra, redis_client):
    start, end = T0, T0 + 2999 * MINUTE
    venue = make_exchange("sim", api_key="", api_secret="", base_url=sim.url)

    def stop_after_first_page(done, total, _):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download_candles("sim", "SOLUSDT", "1m", start, end, exchange=venue, progress=stop_after_first_page)
    assert len(stored("sim", "SOLUSDT", "1m")) == 1000
    resumed = download_candles("sim", "SOLUSDT", "1m", start, end, exchange=venue)
    assert (resumed.rows, resumed.added, resumed.first) == (2000, 2000, start + 1000 * MINUTE)
    assert [c.open_time for c in stored("sim", "SOLUSDT", "1m")] == [start + i * MINUTE for i in range(3000)]


def test_rate_limits_are_waited_out(sim, infra, redis_client):
    waits = []
    venue = make_exchange("sim", api_key="", api_secret="", base_url=sim.url, max_attempts=1)
    sim.set_faults(http_429_count=2, retry_after=0)
    try:
        report = download_candles(
            "sim", "BNBUSDT", "15m", T0, T0 + 99 * 15 * MINUTE, exchange=venue, sleep=waits.append
        )
    finally:
        sim.clear_faults()
    assert report.added == 100 and len(waits) == 2
