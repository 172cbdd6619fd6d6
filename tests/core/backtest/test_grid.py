"""Grids (core/backtest/grid.py, run_jobs.grid_chunk): slices, candles sent once per sandbox, results
equal to one-by-one runs. The journey through real sandboxes on both cores is tests/cli/test_backtest_grid.py."""

from hypothesis import given
from hypothesis import strategies as st

from core.backtest.engine import run_job
from core.backtest.grid import split
from core.backtest.packed import pack_candles, unpack_candles
from core.backtest.run_jobs import grid_chunk
from core.candles.csv_io import CANDLE_COLUMNS
from core.strategies.examples.sma_cross import SmaCross
from tests.core.backtest.test_engine import random_walk


@given(st.lists(st.integers(), max_size=60), st.integers(1, 9))
def test_slices_are_contiguous_near_equal_and_never_empty(items, parts):
    slices = split(items, parts)
    assert [x for s in slices for x in s] == items
    assert len(slices) <= parts and all(slices)
    assert not slices or max(map(len, slices)) - min(map(len, slices[:-1] or slices)) <= 1


def test_a_chunk_equals_one_by_one_runs_and_later_chunks_reuse_the_candles():
    candles = random_walk(1500, 4)
    payload = {"candles": {c: candles[c].tolist() for c in CANDLE_COLUMNS}, "fee": 0.002, "candles_key": "k1"}
    combos = [{"fast": f, "slow": s} for f in (3, 5) for s in (20, 30)]
    first = grid_chunk(SmaCross, {**payload, "params_list": combos[:2]})
    later = grid_chunk(SmaCross, {**payload, "candles": None, "candle_count": 1500, "params_list": combos[2:]})
    alone = [run_job(SmaCross, {**payload, "params": p, "include_trades": False}) for p in combos]
    got = first["results"] + later["results"]
    assert [r["metrics"] for r in got] == [r["metrics"] for r in alone]
    assert [r["trades"] for r in got] == [r["trades"] for r in alone] and all(r["trades"] > 5 for r in got)
    assert later["indicator_hits"] >= 2  # fast 3 and 5 were computed by the first chunk
    assert first["cpu_seconds"] > 0


def test_packed_candles_come_back_equal_and_what_cannot_be_packed_goes_as_it_is():
    candles = random_walk(300, 2)
    columns = {c: candles[c].tolist() for c in CANDLE_COLUMNS}
    packed = pack_candles(columns)
    back = unpack_candles(packed["packed"])
    assert all(back[c].tolist() == columns[c] for c in CANDLE_COLUMNS) and back["open"].flags.writeable
    chunk = grid_chunk(SmaCross, {"candles": packed, "candles_key": "p", "params_list": [{"fast": 3, "slow": 9}]})
    alone = run_job(SmaCross, {"candles": columns, "params": {"fast": 3, "slow": 9}, "include_trades": False})
    assert chunk["results"][0]["metrics"] == alone["metrics"]
    bad = {**columns, "close": ["x"] * 300}
    assert pack_candles(bad) is bad and pack_candles("file.csv") == "file.csv"
    assert pack_candles({**columns, "volume": [10**30] * 300})["packed"]  # a float column takes big numbers
    assert pack_candles({**columns, "open_time": [2**70] * 300})["open_time"] == [2**70] * 300


def test_a_chunk_naming_candles_this_sandbox_has_not_seen_asks_for_them():
    answer = grid_chunk(SmaCross, {"candles": None, "candles_key": "never-sent", "params_list": [{"fast": 3}]})
    assert answer == {"missing_candles": True}
