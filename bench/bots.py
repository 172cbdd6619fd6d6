"""`aristobot bench bots`: 20 running bots (the brief's maximum) on 20 symbols and two timeframes, all closing
on the same minute, through the whole live path: simulator → feeds → Celery bot tick → sandbox → order at
the venue.

Each bot flips (buys 2 % of the shared USDT when flat, sells when holding), so every tick of every bot
sends one market order (sizes stay within every synthetic symbol's quantity limits).
`close_to_order_ms` of a tick: from the candle's close at the source (its close time, on the venue's
clock) to the order acknowledged by the venue (its first event at `open`/`filled` in our ledger).
`missed_ticks`: closes of the window with no recorded decision (or a `skip`/`error` one).

Needs Postgres and Redis (the configured ones); the CLI runs it in a child on a private Redis database,
like bench parity. Starts its own simulator (20 synthetic symbols), feeds process and Celery worker.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select, update

from bench.accounts import bench_user, fresh_sim_connection
from bench.parity import live_processes
from core.bots import manage
from core.candles.candle import timeframe_ms
from core.infra.bus import get_redis
from core.infra.config import get_settings
from core.infra.db import session_scope
from core.models import Bot, BotTick, OrderEvent
from core.percentiles import summary
from core.strategies import store as strategy_store
from sim.spot.market import DEFAULT_SYMBOLS, SymbolSpec
from sim.spot.server import SimHandle, start_in_thread

USER = "bench-bots"
BOTS = 20
TIMEFRAMES = ("1m", "3m")  # every third minute both close at once
TARGET_P99_MS = 1000.0
SETTLE_MS = 90_000
ACKED = ("open", "partially_filled", "filled")
FLIP = """from core.strategies import Strategy


class Flip(Strategy):
    def should_long(self):
        return True

    def should_exit(self):
        return True

    def position_size(self):
        return 0.02
"""


def bench_symbols(count: int = BOTS) -> tuple[SymbolSpec, ...]:
    """The simulator's symbols, then synthetic ones (same rules as BTCUSDT, other names and prices)."""
    base = DEFAULT_SYMBOLS[0]
    extra = tuple(
        replace(base, symbol=f"BOT{i:02d}USDT", base=f"BOT{i:02d}", start_price=Decimal(100 + 10 * i))
        for i in range(count - len(DEFAULT_SYMBOLS))
    )
    return DEFAULT_SYMBOLS + extra


def start_flip_bots(session, user_id: int, broker_id: int, prefix: str, markets: list[tuple[str, str]]) -> list[int]:
    """One running flip bot per (symbol, timeframe), all on one new strategy; returns their ids."""
    token = secrets.token_hex(4)
    version = strategy_store.create_strategy(session, user_id, f"{prefix}-{token}", code=FLIP).latest
    ids = []
    for index, (symbol, timeframe) in enumerate(markets):
        bot = manage.create_bot(
            session,
            user_id,
            manage.BotSettings(
                name=f"{prefix}-{token}-{index}",
                strategy_version_id=version.id,
                broker_id=broker_id,
                symbol=symbol,
                timeframe=timeframe,
                candles_needed=50,
            ),
        )
        manage.start_bot(session, bot)
        ids.append(bot.id)
    return ids


def pause_bots(bot_ids: list[int]) -> None:
    with session_scope() as session:
        session.execute(update(Bot).where(Bot.id.in_(bot_ids)).values(state="paused"))


def _create_bots(sim: SimHandle, symbols: tuple[SymbolSpec, ...]) -> list[int]:
    with session_scope() as session:
        user = bench_user(session, USER)
        session.execute(update(Bot).where(Bot.user_id == user.id).values(state="paused"))
        broker, _ = fresh_sim_connection(session, user.id, f"Bots {secrets.token_hex(4)}", sim.url, {"USDT": "100000"})
        markets = [(spec.symbol, TIMEFRAMES[index % len(TIMEFRAMES)]) for index, spec in enumerate(symbols)]
        return start_flip_bots(session, user.id, broker.id, "flip", markets)


def _measure(bot_ids: list[int], first_close_ms: int, last_close_ms: int) -> dict:
    """Latencies of the ticks whose candle closed in [first_close_ms, last_close_ms], and the misses."""
    with session_scope() as session:
        bots = dict(session.execute(select(Bot.id, Bot.timeframe).where(Bot.id.in_(bot_ids))).all())
        ticks = session.execute(
            select(BotTick.bot_id, BotTick.candle_time, BotTick.action, BotTick.order_ids).where(
                BotTick.bot_id.in_(bot_ids)
            )
        ).all()
        acked = dict(
            session.execute(
                select(OrderEvent.order_id, func.min(OrderEvent.at))
                .where(OrderEvent.to_state.in_(ACKED))
                .group_by(OrderEvent.order_id)
            ).all()
        )
    latencies, decided, expected = [], set(), 0
    for timeframe in bots.values():
        span = timeframe_ms(timeframe)
        expected += sum(1 for close in range(first_close_ms, last_close_ms + 1, 60_000) if close % span == 0)
    for bot_id, candle_time, action, order_ids in ticks:
        close_ms = candle_time + timeframe_ms(bots[bot_id])
        if not first_close_ms <= close_ms <= last_close_ms or action in ("skip", "error"):
            continue
        decided.add((bot_id, candle_time))
        for order_id in order_ids or []:
            if order_id in acked:
                latencies.append(acked[order_id].timestamp() * 1000 - close_ms)
    return {"expected_ticks": expected, "missed_ticks": expected - len(decided), "latencies": latencies}


PHASES = ("issued_after_close_ms", "queued_ms", "settled_ms", "loaded_ms", "decided_ms", "planned_ms", "placed_ms")


def _phases(log_lines: list[str], bot_ids: list[int], closes: dict[int, str], first: int, last: int) -> dict:
    """p50/p99 of each step of the window's ticks, from the worker's `bot_ticked` log lines (core/bots/runner.py:
    the feeds' enqueue after the close, the wait in the queue, then ms since the task started at each step)."""
    wanted, samples = set(bot_ids), {phase: [] for phase in PHASES}
    for line in log_lines:
        if '"bot_ticked"' not in line:
            continue
        context = json.loads(line).get("context", {})
        bot_id = context.get("bot_id")
        if bot_id not in wanted or "queued_ms" not in context:
            continue
        if not first <= context["candle_time"] + timeframe_ms(closes[bot_id]) <= last:
            continue
        for phase in PHASES:
            if phase in context:
                samples[phase].append(float(context[phase]))
    return {phase: {k: summary(v, 1)[k] for k in ("p50", "p99")} for phase, v in samples.items() if v}


def _loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


POOLS = {  # the bots worker as the Procfile runs it now, and as it ran before (2 prefork processes, cold sandboxes)
    "threads": ("-P", "threads", "-c", "20"),
    "prefork": ("-c", "2"),
}


def run_bots(minutes: int = 6, pool_name: str = "threads") -> dict:
    started = time.perf_counter()
    load_start = _loadavg()
    pool = POOLS[pool_name]
    get_redis().flushdb()  # the bench's own Redis database (the CLI hands it one)
    symbols = bench_symbols()
    sim = start_in_thread(seed=5, symbols=symbols)
    bot_ids: list[int] = []
    try:
        bot_ids = _create_bots(sim, symbols)
        log_path = get_settings().var_dir / "bench-bots-worker.log"  # kept for a look at the ticks afterwards
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with (
            log_path.open("w+") as worker_log,
            live_processes(sim, [s.symbol for s in symbols], "bots", worker_log, pool),
        ):
            common = 60_000 * 3
            # The next close of both timeframes once the feeds caught up with their start-up backfill and the
            # worker warmed the sandboxes (a loaded machine needs a minute or two for that).
            first_close = ((int(time.time() * 1000) + SETTLE_MS) // common + 1) * common
            last_close = first_close + minutes * 60_000
            while time.time() * 1000 < last_close + 15_000:  # the last closes' ticks have 15 s to land
                time.sleep(1)
        log_lines = log_path.read_text().splitlines()  # once the worker stopped: every tick it finished
        pause_bots(bot_ids)
        measured = _measure(bot_ids, first_close, last_close)
        closes = {bot_id: TIMEFRAMES[index % len(TIMEFRAMES)] for index, bot_id in enumerate(bot_ids)}
        phases = _phases(log_lines, bot_ids, closes, first_close, last_close)
    finally:
        if bot_ids:
            pause_bots(bot_ids)
        sim.stop()
    stats = summary(measured["latencies"], 1)
    return {
        "bots": len(bot_ids),
        "symbols": len(symbols),
        "timeframes": list(TIMEFRAMES),
        "minutes": minutes,
        "pool": pool_name,
        "orders": len(measured["latencies"]),
        "expected_ticks": measured["expected_ticks"],
        "missed_ticks": measured["missed_ticks"],
        "close_to_order_p50_ms": stats["p50"],
        "close_to_order_p99_ms": stats["p99"],
        "close_to_order_max_ms": stats["max"],
        "target_p99_ms": TARGET_P99_MS,
        "tick_phases_ms": phases,
        "loadavg_1m_start": load_start,
        "loadavg_1m_end": _loadavg(),
        "wall_s": round(time.perf_counter() - started, 1),
    }


if __name__ == "__main__":
    print(json.dumps(run_bots(int(sys.argv[1]), *sys.argv[2:3])))
