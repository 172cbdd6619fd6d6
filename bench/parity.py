"""`aristobot bench parity`: a strategy live as a bot and as a backtest on the same real candles, trade by trade.

Live: a simulator replays the candle file (sim/spot/replay.py) `speed` times faster than the clock; the
feeds process (a child, `python -m feeds`) streams it and enqueues the bot ticks; a Celery worker (a
child, queues `bots` + `orders`) runs each tick: the strategy in its sandbox, the market order, the
stop-loss/take-profit at the venue, the fills into our ledger. Backtest: `core.backtest.engine` in the
sandbox on the same rows, with the simulator's fee. Then core/backtest/trade_compare.py pairs the trades.

Lockstep: the replay is let into each minute's opening seconds (where it trades at the open) only once
the bot has acted on the previous close (tick recorded, orders filled, stop/target resting). So the
comparison is about what the platform decides and fills, not about this machine's load: at 60x a
second of latency would be a whole candle. The latency is what `aristobot bench bots` measures.

Needs Postgres and Redis (the configured ones). The CLI runs this module in a child process on a
private Redis database, which it empties first (candle streams, tick claims), so a running install's
workers never see its tasks. Do not run it next to a live `feeds` process on venue `sim`: that one would
tick the bench's bot on its own candles. Candles of venue `sim` for the replayed symbol inside the
replayed period (and a week before it) are deleted first: an earlier run's rows would feed the bot's
indicators with candles the backtest does not have.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO

from sqlalchemy import delete, func, select, update

from bench.accounts import bench_user, fresh_sim_connection
from core.backtest.budget import backtest_limits
from core.backtest.trade_compare import (
    PRICE_TOLERANCE_BPS,
    QTY_TOLERANCE,
    SLIPPAGE_BPS,
    LiveFill,
    backtest_trades,
    compare,
    live_trades,
)
from core.bots import manage
from core.bots.live_backtest import bot_fills
from core.candles.csv_io import CANDLE_COLUMNS, read_candles_csv
from core.infra.bus import get_redis
from core.infra.config import ROOT
from core.infra.db import session_scope
from core.models import Bot, BotTick, Candle, Order
from core.orders.states import FINAL_STATES
from core.strategies import store as strategy_store
from core.strategies.sandbox import SandboxError, run_sandboxed
from sim.spot.orders import FEE_RATE
from sim.spot.replay import HOLD_SECONDS, ReplayMarket, symbol_of
from sim.spot.server import SimHandle, start_in_thread

USER = "bench-parity"
MINUTE_MS = 60_000
READY_TIMEOUT_S = 240.0  # a loaded 2-core machine starts a Celery worker slowly
TICK_WAIT_S = 30.0
FINAL_VALUES = {state.value for state in FINAL_STATES}


@dataclass(frozen=True)
class ParityOptions:
    candles: Path
    strategy: Path
    params: dict[str, str] = field(default_factory=dict)
    rows: int = 2000
    skip: int = 0
    speed: float = 60.0
    cash: float = 10_000.0
    slippage_bps: float = SLIPPAGE_BPS  # the simulator's half spread: a market order fills one level off the last trade
    candles_needed: int = 300
    price_tolerance_bps: float = PRICE_TOLERANCE_BPS
    qty_tolerance: float = QTY_TOLERANCE


def slice_candles(source: Path, skip: int, rows: int, folder: Path) -> Path:
    """Rows [skip, skip + rows) of a candle CSV into folder (same file name, so the same symbol)."""
    if rows < 2 or skip < 0:
        raise ValueError("--rows must be at least 2 and --skip not negative")
    target = folder / source.name
    with source.open() as reader, target.open("w") as writer:
        writer.write(reader.readline())
        for index, line in enumerate(reader):
            if index >= skip + rows:
                break
            if index >= skip:
                writer.write(line)
    return target


def run_backtest(code: str, candles_file: Path, options: ParityOptions) -> dict:
    candles = read_candles_csv(candles_file)
    payload = {
        "candles": {c: candles[c].tolist() for c in CANDLE_COLUMNS},
        "params": options.params,
        "fee": float(FEE_RATE),
        "slippage_bps": options.slippage_bps,
        "cash": options.cash,
        "start_ms": None,
        "end_ms": None,
        "include_trades": True,
    }
    try:
        result = run_sandboxed(code, job="core.backtest.engine:run_job", payload=payload, limits=backtest_limits())
    except SandboxError as exc:
        raise RuntimeError(f"the backtest failed: {exc}") from exc
    if result.get("status") != "ok":
        raise RuntimeError(f"the backtest failed: {result.get('error')}")
    return result


def _child(args: list[str], log: IO | None = None) -> subprocess.Popen:
    env = {**os.environ, "ARISTOBOT_LOG_LEVEL": "INFO"} if log else None
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log or subprocess.DEVNULL, env=env
    )


@contextmanager
def live_processes(
    sim: SimHandle,
    symbols: list[str],
    name: str = "parity",
    worker_log: IO | None = None,
    pool: tuple[str, ...] = ("-c", "2"),
) -> Iterator[None]:
    """A Celery worker (queues bots + orders) and a feeds process on the simulator, both children, ready.
    `worker_log`: where the worker writes its JSON log lines at INFO (else nothing is kept); `pool`: its
    pool options (bench bots: the Procfile's bots worker, `-P threads -c 20`)."""
    worker = _child(
        ["-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "bots,orders", *pool, "-n",
         f"{name}-{secrets.token_hex(3)}@%h", "--without-gossip", "--without-mingle",
         "--loglevel", "INFO" if worker_log else "WARNING"],
        worker_log,
    )  # fmt: skip
    feeds = _child(
        ["-m", "feeds", "--venue", "sim", "--symbols", ",".join(symbols), "--ws-url", sim.ws_url, "--rest-url", sim.url,
         "--liveness-name", f"feeds-{name}"]
    )  # fmt: skip
    try:
        _wait_ready(sim, worker, feeds)
        yield
    finally:
        for process in (feeds, worker):
            process.terminate()
        for process in (feeds, worker):
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:  # a starved machine: do not lose the run's figures for it
                process.kill()
                process.wait(30)


def _wait_ready(sim: SimHandle, worker: subprocess.Popen, feeds: subprocess.Popen) -> None:
    from workers.celery_app import app

    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        for process, name in ((worker, "the Celery worker"), (feeds, "the feeds process")):
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}")
        if sim.state.hub.connection_count() >= 1 and app.control.ping(timeout=0.5):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the worker and the feeds were not ready within {READY_TIMEOUT_S:g} s")


def _forget_candles(market: ReplayMarket) -> None:
    first, end = market.first_second * 1000, (market.end_second or market.first_second) * 1000
    with session_scope() as session:
        session.execute(
            delete(Candle).where(
                Candle.venue == "sim",
                Candle.symbol == market.symbol,
                Candle.open_time >= first - 7 * 24 * 3600 * 1000,
                Candle.open_time <= end,
            )
        )


def _create_bot(sim: SimHandle, market: ReplayMarket, code: str, options: ParityOptions) -> tuple[int, str]:
    """A fresh broker connection (own simulator account holding only the cash) and a paused bot."""
    token = secrets.token_hex(4)
    with session_scope() as session:
        user = bench_user(session, USER)
        balances = {market.spec.quote: str(options.cash)}
        broker, account_id = fresh_sim_connection(session, user.id, f"Parity {token}", sim.url, balances)
        strategy = strategy_store.create_strategy(session, user.id, f"parity-{token}", code=code)
        if not strategy.latest.valid:
            raise RuntimeError(f"the strategy does not validate: {strategy.latest.errors}")
        bot = manage.create_bot(
            session,
            user.id,
            manage.BotSettings(
                name=f"parity-{token}",
                strategy_version_id=strategy.latest.id,
                broker_id=broker.id,
                symbol=market.symbol,
                timeframe="1m",
                params=options.params,
                candles_needed=options.candles_needed,
            ),
        )
        return bot.id, account_id


def _set_running(bot_id: int, running: bool) -> None:
    with session_scope() as session:
        bot = session.get_one(Bot, bot_id)
        if running:
            manage.start_bot(session, bot)
        else:
            session.execute(update(Bot).where(Bot.id == bot_id).values(state="paused"))


def _settled(bot_id: int, candle_time: int) -> bool:
    """The bot acted on this close: its tick is recorded, the tick's orders are filled (or final), and an
    entry's stop-loss/take-profit (trailing stop, ladder rungs) is recorded for the venue."""
    with session_scope() as session:
        tick = session.scalar(select(BotTick).where(BotTick.bot_id == bot_id, BotTick.candle_time == candle_time))
        if tick is None:
            return False
        states = session.scalars(select(Order.state).where(Order.id.in_(tick.order_ids or []))).all()
        if any(state not in FINAL_VALUES for state in states):
            return False
        decision = tick.decision or {}
        if tick.action != "enter" or all(
            decision.get(k) is None for k in ("stop_loss", "take_profit", "trailing_stop", "take_profit_ladder")
        ):
            return True
        protection = session.scalar(
            select(Order.id).where(
                Order.source == "bot",
                Order.source_ref == str(bot_id),
                Order.type != "market",
                Order.id > max(tick.order_ids),
            )
        )
        return protection is not None


def _lockstep(bot_id: int, market: ReplayMarket) -> int:
    """Let the market into each minute's opening seconds only once the bot has acted on the close before
    (a tick that never settles is waited for TICK_WAIT_S); returns how many ticks timed out."""
    clock, first = market.clock, market.first_second
    late = 0
    clock.set_gate(first + 60 + HOLD_SECONDS - 2)
    clock.start()
    for minute in range(market.count):
        close_s = first + (minute + 1) * 60
        while clock.now() < close_s + HOLD_SECONDS - 2 and clock.now() < clock.end_s:
            time.sleep(0.01)
        deadline = time.monotonic() + TICK_WAIT_S
        while not _settled(bot_id, (first + minute * 60) * 1000):
            if time.monotonic() > deadline:
                late += 1
                break
            time.sleep(0.02)
        clock.set_gate(close_s + 60 + HOLD_SECONDS - 2 if minute + 2 < market.count else None)
    return late


def _live_fills(bot_id: int, market: ReplayMarket) -> list[LiveFill]:
    with session_scope() as session:
        return bot_fills(session, bot_id, lambda wall: _market_ms(market, wall))


def _market_ms(market: ReplayMarket, wall: datetime) -> int:
    """The replay's time when the venue's (wall) clock read `wall`."""
    return int(market.clock.market_at((wall if wall.tzinfo else wall.replace(tzinfo=UTC)).timestamp()) * 1000)


def _explain(bot_id: int, details: list[dict]) -> None:
    """Add to each mismatch the bot's own record of the decision behind the trade (the tick a candle before
    the entry): what it decided and why."""
    with session_scope() as session:
        for detail in details:
            trade = detail.get("backtest") or detail.get("live") or {}
            if "entry_ms" not in trade:
                continue
            tick = session.scalar(
                select(BotTick).where(BotTick.bot_id == bot_id, BotTick.candle_time == trade["entry_ms"] - MINUTE_MS)
            )
            if tick is not None:
                detail["live_decision"] = {"action": tick.action, "note": tick.note, "decision": tick.decision}


def _tick_counts(bot_id: int) -> dict[str, int]:
    with session_scope() as session:
        rows = session.execute(
            select(BotTick.action, func.count()).where(BotTick.bot_id == bot_id).group_by(BotTick.action)
        ).all()
    return {action: count for action, count in rows}


def _live_equity(sim: SimHandle, account_id: str, market: ReplayMarket) -> float:
    balances = sim.state.engine.account(account_id).balances
    last_close = market.spec.price(market.close[-1])

    def held(asset: str) -> Decimal:
        balance = balances.get(asset)
        return balance.free + balance.locked if balance else Decimal(0)

    return float(held(market.spec.quote) + held(market.spec.base) * last_close)


def run_parity(options: ParityOptions) -> dict:
    started = time.perf_counter()
    code = options.strategy.read_text()
    with tempfile.TemporaryDirectory(prefix="parity-") as folder:
        candles_file = slice_candles(options.candles, options.skip, options.rows, Path(folder))
        market = ReplayMarket(candles_file, options.speed, symbol_of(options.candles))
        backtest = run_backtest(code, candles_file, options)
    get_redis().flushdb()  # the bench's own Redis database (see the module docstring)
    _forget_candles(market)
    sim = start_in_thread(replay=market)
    bot_id, late_ticks = 0, 0
    try:
        bot_id, account_id = _create_bot(sim, market, code, options)
        with live_processes(sim, [market.symbol]):
            _set_running(bot_id, True)
            late_ticks = _lockstep(bot_id, market)
        _set_running(bot_id, False)
        fills = _live_fills(bot_id, market)
        equity_live = _live_equity(sim, account_id, market)
    finally:
        if bot_id:
            _set_running(bot_id, False)
        sim.stop()
    end_ms = (market.end_second or 0) * 1000
    live = [t for t in live_trades(fills) if t.entry_ms < end_ms]
    for trade in live:
        if trade.exit_ms is not None and trade.exit_ms >= end_ms:  # sold after the file: open at its end
            trade.exit_ms, trade.exit_price, trade.exit_reason = None, None, "open"
    tested = backtest_trades(backtest["trades"])
    result = compare(live, tested, price_tolerance_bps=options.price_tolerance_bps, qty_tolerance=options.qty_tolerance)
    _explain(bot_id, result.details[:20])
    return {
        "candles": market.count,
        "symbol": market.symbol,
        "speed": options.speed,
        "params": options.params,
        "fee": float(FEE_RATE),
        "slippage_bps": options.slippage_bps,
        "trades_live": len(live),
        "trades_backtest": len(tested),
        "mismatched_trades": result.mismatched,
        "exits_backtest": dict(Counter(t.exit_reason for t in tested)),  # signal, stop_loss, trailing_stop...
        "worst_entry_price_bps": result.worst_entry_bps,
        "worst_exit_price_bps": result.worst_exit_bps,
        "final_equity_live": round(equity_live, 2),
        "final_equity_backtest": round(float(backtest["final_equity"]), 2),
        "ticks": _tick_counts(bot_id),
        "ticks_waited_out": late_ticks,
        "mismatches": result.details[:20],
        "wall_s": round(time.perf_counter() - started, 1),
    }


def options_from_json(text: str) -> ParityOptions:
    raw = json.loads(text)
    return ParityOptions(**{**raw, "candles": Path(raw["candles"]), "strategy": Path(raw["strategy"])})


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(143)  # run the finally blocks: the worker and feeds children are stopped


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    print(json.dumps(run_parity(options_from_json(sys.argv[1]))))
