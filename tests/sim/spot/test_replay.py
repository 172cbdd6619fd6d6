"""The replayed market: a real candle file honoured candle by candle, on a clock N times faster, and every
bad file refused with the line at fault."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from websockets.sync.client import connect

from core.exchanges.replay_clock import replay_clock
from core.infra.config import get_settings
from sim.spot.replay import HOLD_SECONDS, ReplayError, ReplayMarket
from sim.spot.server import start_in_thread

ROWS = 240


@pytest.fixture(scope="module")
def real_rows() -> list[str]:
    source = get_settings().data_dir / "BTCUSDT-1m.csv"
    with source.open() as handle:
        return [next(handle).strip() for _ in range(ROWS + 1)]


@pytest.fixture(scope="module")
def replay_file(real_rows: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "BTCUSDT-1m.csv"
    path.write_text("\n".join(real_rows) + "\n")
    return path


def _row(line: str) -> tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]:
    t, o, h, lo, c, v = line.split(",")
    return int(t), Decimal(o), Decimal(h), Decimal(lo), Decimal(c), Decimal(v)


def test_klines_are_the_files_candles_and_aggregate_like_them(replay_file: Path, real_rows: list[str]):
    market = ReplayMarket(replay_file)
    first = _row(real_rows[1])[0]
    now_ms = first + ROWS * 60_000 + 5_000  # after the file's end: every candle is closed
    rows = market.klines("BTCUSDT", "1m", now_ms=now_ms, start_ms=first, limit=1000)
    assert len(rows) == ROWS and all(k.closed for k in rows)
    for kline, line in zip(rows, real_rows[1:], strict=True):
        t, o, h, lo, c, v = _row(line)
        assert (kline.open_time, kline.open, kline.high, kline.low, kline.close, kline.volume) == (t, o, h, lo, c, v)
    hour = market.klines("BTCUSDT", "1h", now_ms=now_ms, start_ms=first, limit=1)[0]
    minutes = [_row(line) for line in real_rows[1:61]]
    assert hour.high == max(m[2] for m in minutes) and hour.low == min(m[3] for m in minutes)
    assert hour.open == minutes[0][1] and hour.close == minutes[-1][4]
    assert hour.volume == sum(m[5] for m in minutes)


def test_each_minute_opens_flat_then_walks_low_high_or_high_low_to_the_close(replay_file: Path, real_rows: list[str]):
    market = ReplayMarket(replay_file)
    for index in (0, 1, 2, 3):
        t, o, h, lo, c, v = _row(real_rows[index + 1])
        trades = [market.trade("BTCUSDT", t // 1000 + s) for s in range(60)]
        prices = [trade.price for trade in trades]
        assert set(prices[:HOLD_SECONDS]) == {o}
        assert prices[-1] == c and max(prices) == h and min(prices) == lo
        low_at, high_at = prices.index(lo), prices.index(h)
        assert (low_at <= high_at) if c >= o else (high_at <= low_at)
        assert sum(trade.qty for trade in trades) == v


def test_the_clock_is_held_until_started_then_runs_speed_times_faster(replay_file: Path):
    market = ReplayMarket(replay_file, speed=60)
    clock = market.clock
    assert clock.now() == market.first_second
    clock.start(wall=time.time() - 10)  # started 10 s ago: 600 market seconds later
    assert clock.now() >= market.first_second + 600
    clock.start(wall=time.time() - 10_000)
    assert clock.now() >= market.first_second + 600  # a second start() does not move the origin
    late = ReplayMarket(replay_file, speed=60)
    late.clock.start(wall=time.time() - 3600)
    assert late.clock.now() == late.end_second  # the market stops at the end of the file


def test_a_gate_holds_the_market_and_opening_it_resumes_from_there_without_a_jump(replay_file: Path):
    market = ReplayMarket(replay_file, speed=600)
    clock, first = market.clock, market.first_second
    clock.set_gate(first + 30)
    clock.start(wall=time.time() - 1)  # 600 market seconds ago, but the gate holds it at second 30
    assert clock.now() == first + 30
    clock.set_gate(first + 90)
    assert first + 30 <= clock.now() <= first + 90  # resumes from the gate, not from start + 600
    opened = time.time()
    clock.set_gate(None)
    assert clock.now() >= first + 30
    assert clock.market_at(opened - 0.5) == first + 30  # while it was held
    assert clock.market_at(clock.wall_at(first + 31.5)) == pytest.approx(first + 31.5, abs=0.01)  # the inverse
    assert clock.market_at(opened + 0.1) >= first + 30 + 60 * 0.9  # after: 600 market seconds per wall second


BAD_FILES = [
    (lambda rows: rows[:3] + rows[4:], "line 4: gap of 1 minute(s)"),
    (lambda rows: rows[:3] + [rows[2]] + rows[3:], "line 4: open_time 1747699260000 is duplicate"),
    (lambda rows: rows[:2] + ["1747699260000,abc,1,1,1,1"] + rows[3:], "line 3: open is not a finite number"),
    (lambda rows: rows[:2] + ["1747699260000,105554.321,105609.89,105554.31,105604.68,6"] + rows[3:], "line 3"),
    (lambda rows: rows[:2] + ["1747699260000,100,90,80,85,1"] + rows[3:], "line 3: high/low do not contain"),
    (lambda rows: rows[:2] + ["1747699260001,1,1,1,1,1"] + rows[3:], "line 3: open_time 1747699260001 is not on"),
    (lambda rows: rows[:1], "no candles"),
]


@pytest.mark.parametrize(("damage", "message"), BAD_FILES)
def test_a_bad_replay_file_is_refused_naming_its_line(real_rows: list[str], tmp_path: Path, damage, message):
    path = tmp_path / "BTCUSDT-1m.csv"
    path.write_text("\n".join(damage(real_rows[:20])) + "\n")
    with pytest.raises(ReplayError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ReplayMarket(path)


def test_an_unknown_symbol_a_missing_file_or_a_bad_speed_is_refused(replay_file: Path, tmp_path: Path):
    with pytest.raises(ReplayError, match="cannot replay 'DOGEUSDT'"):
        ReplayMarket(replay_file, symbol="DOGEUSDT")
    with pytest.raises(ReplayError, match="cannot read file"):
        ReplayMarket(tmp_path / "BTCUSDT-1m.csv")
    with pytest.raises(ReplayError, match="replay speed must be in"):
        ReplayMarket(replay_file, speed=0)


def test_the_simulator_streams_and_serves_the_replay_on_its_clock(replay_file: Path, real_rows: list[str]):
    market = ReplayMarket(replay_file, speed=600)  # a minute every 0.1 s
    sim = start_in_thread(replay=market)
    try:
        clock = replay_clock(sim.url)
        assert clock is not None and clock() == market.first_second  # held: the feeds see the first open
        with connect(f"{sim.ws_url}/stream?streams=btcusdt@kline_1m", open_timeout=5) as ws:
            market.clock.start()
            closed = []
            while len(closed) < 3:
                event = json.loads(ws.recv(timeout=10))["data"]["k"]
                if event["x"]:
                    closed.append(event)
        for event, line in zip(closed, real_rows[1:4], strict=True):
            t, o, h, lo, c, v = _row(line)
            assert (event["t"], Decimal(event["o"]), Decimal(event["h"]), Decimal(event["l"])) == (t, o, h, lo)
            assert (Decimal(event["c"]), Decimal(event["v"])) == (c, v)
        for _ in range(100):  # the view asks the simulator again (every 0.25 s)
            if clock() > market.first_second:
                break
            time.sleep(0.05)
        assert clock() >= market.first_second + 180  # the view follows the started clock
        history = requests.get(
            f"{sim.url}/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": 2}, timeout=5
        ).json()
        assert history[0][0] >= _row(real_rows[3])[0]
        assert requests.get(f"{sim.url}/sim/health", timeout=5).json()["replay"]["speed"] == 600
    finally:
        sim.stop()


@pytest.mark.slow  # a Python process start: ~4 s on the shared machine
def test_the_sim_command_refuses_a_bad_replay_file_naming_the_line(real_rows: list[str], tmp_path: Path):
    import subprocess
    import sys

    from tests.conftest import ROOT, process_env

    path = tmp_path / "BTCUSDT-1m.csv"
    path.write_text("\n".join(real_rows[:3] + real_rows[4:10]) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "sim.spot", "--replay", str(path), "--port", "1"],
        cwd=ROOT, env=process_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"sim: cannot replay: {path}, line 4: gap of 1 minute(s)" in done.stderr
