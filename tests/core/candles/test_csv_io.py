import numpy as np
import pytest

from bench.data import data_dir
from core.candles.csv_io import CandleFileError, find_gaps, parse_candles_csv, read_candles_csv

DATA = data_dir()
HEADER = "open_time,open,high,low,close,volume\n"
ROWS = [
    "1747699200000,100.0,101.0,99.0,100.5,1.5",
    "1747699260000,100.5,102.0,100.0,101.0,2.0",
    "1747699320000,101.0,101.5,100.5,101.2,0.0",
]


def kline(open_time: int, o=100.0, h=101.0, low=99.0, c=100.5, v=1.0) -> str:
    return f"{open_time},{o},{h},{low},{c},{v},{open_time + 59999},0,10,0,0,0"


def test_reads_our_layout_with_types():
    frame = parse_candles_csv(HEADER + "\n".join(ROWS) + "\n")
    assert list(frame.columns) == ["open_time", "open", "high", "low", "close", "volume"]
    assert frame["open_time"].dtype == np.int64
    assert frame["open_time"].tolist() == [1747699200000, 1747699260000, 1747699320000]
    assert frame["close"].tolist() == [100.5, 101.0, 101.2]


def test_reads_binance_dump_in_ms_and_in_microseconds():
    ms = parse_candles_csv("\n".join(kline(1747699200000 + 60000 * i) for i in range(3)))
    us = parse_candles_csv("\n".join(kline((1747699200000 + 60000 * i) * 1000) for i in range(3)))
    assert ms["open_time"].tolist() == us["open_time"].tolist() == [1747699200000, 1747699260000, 1747699320000]
    assert ms["volume"].tolist() == [1.0, 1.0, 1.0]


def test_reads_the_real_file_bit_for_bit():
    frame = read_candles_csv(DATA / "BTCUSDT-1m.csv")
    assert len(frame) == 130_708
    assert frame.iloc[0].tolist() == [1747699200000, 105573.73, 105597.1, 105554.31, 105554.32, 10.82647]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("", None, "empty"),
        (HEADER, None, "only a header"),
        (HEADER + ROWS[0] + "\n" + ROWS[1].replace("102.0", "abc") + "\n", 3, "high is not a finite number"),
        (HEADER + ROWS[1] + "\n" + ROWS[0] + "\n", 3, "out of order"),
        (HEADER + ROWS[0] + "\n" + ROWS[0] + "\n", 3, "duplicate"),
        (HEADER + ROWS[0].replace("99.0", "-1") + "\n", 2, "low must be positive"),
        (HEADER + ROWS[0].replace("101.0", "99.5") + "\n", 2, "high/low"),
        ("time,open,high,low,close,volume\n" + ROWS[0], 1, "open_time"),
        ("1,2,3\n", 1, "3 columns"),
        (HEADER + ROWS[0] + "\n" + ROWS[1] + ",7\n", 3, "malformed row"),
    ],
)
def test_bad_files_name_the_line(text, line, words):
    with pytest.raises(CandleFileError) as info:
        parse_candles_csv(text, source="x.csv")
    assert info.value.line == line
    assert words in str(info.value)
    assert str(info.value).startswith("x.csv")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CandleFileError, match="cannot read"):
        read_candles_csv(tmp_path / "nope.csv")


def test_gaps_of_the_hourly_file_match_its_readme():
    frame = read_candles_csv(DATA / "BTCUSDT-1h.csv")
    gaps = find_gaps(frame["open_time"].to_numpy())
    assert len(gaps) == 28
    assert sum(g.missing for g in gaps) == 128
    # 2018-02-08 00:00 -> 02-09 10:00, 33 missing hours
    assert any(g.missing == 33 and g.last_before_ms == 1518048000000 for g in gaps)


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ("1735689600000,1e300,1e300,1e300,1e300,1", "open 1e300 is beyond what a candle holds"),
        ("1735689600000,1,1,1,1,99999999999999999999999", "volume 99999999999999999999999 is beyond"),
        (f"{10**300},1,1,1,1,1", "open_time is not a timestamp in ms or µs"),
    ],
)
def test_values_the_store_cannot_hold_are_refused_with_their_line(row, says):
    with pytest.raises(CandleFileError, match=says) as info:
        parse_candles_csv("open_time,open,high,low,close,volume\n1735689540000,1,1,1,1,1\n" + row + "\n")
    assert info.value.line == 3
