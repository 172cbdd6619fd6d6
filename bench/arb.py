"""`python -m bench.arb --json` (`aristobot bench arb --json`): the engine's two latencies.

1. update-to-decision: a generated stream of Vest depth frames and Paradex snapshot/delta frames
   (the venues' wire formats, prices from the simulators' book generator) replayed through the real
   parsers, `OrderBook` and the engine's spread + decision code. No network, one core.
2. detection-to-both-sent: the real engine against the perp simulators (a separate process, as in
   production), Postgres intent write included: from the decision to the instant the second order's
   bytes were written to its socket (aiohttp send trace).

`--pairs N` runs N pairs (the simulators' first N markets) in one engine, as `python -m arb` does with a list of
pairs (arb/runner.py): every pair's books stream through its own engine, and the updates of all pairs are
interleaved (1) / the trades go round the pairs while all their books stream (2). With `--process-per-pair`, (2)
runs the other way instead: every pair but the first in its own `python -m arb` process, the trades on the first.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from arb.config import parse_arb_config, parse_arb_pairs
from arb.engine import ArbEngine
from arb.legs import LegPlan
from arb.runner import PairsRunner
from arb.spread import compute_spreads
from arb.startup import set_priority
from core import percentiles
from core.exchanges.perp import paradex, vest
from core.exchanges.perp.demo import demo_credentials
from core.infra.embedded_services import wait_for_port
from sim.perp.ledger import BASE_PRICES, synthetic_book

TARGETS_US = {"update_to_decision_p99": 100.0, "detect_to_both_sent_p99": 5000.0}


def summary(values: list[float]) -> dict:
    return {"n": len(values), **percentiles.summary(values, 1)}


class Ladder:
    """A 10-level book that moves like a real one: a tick move inserts at the top and deletes at the far end."""

    def __init__(self, mid: Decimal, rng: random.Random, tick: Decimal = Decimal("0.5"), depth: int = 10):
        self.rng, self.tick, self.depth = rng, tick, depth
        self.bids = {mid - tick * (i + 1): self._size() for i in range(depth)}
        self.asks = {mid + tick * (i + 1): self._size() for i in range(depth)}

    def _size(self) -> Decimal:
        return Decimal(self.rng.randint(1, 400)) / 100

    def mid(self) -> Decimal:
        return (max(self.bids) + min(self.asks)) / 2

    def step(self, target: Decimal) -> dict[str, list[tuple[str, Decimal, Decimal]]]:
        """Move one tick toward `target` or change a few sizes; returns the changes as inserts/updates/deletes."""
        changes: dict[str, list] = {"inserts": [], "updates": [], "deletes": []}
        gap = target - self.mid()
        if abs(gap) >= self.tick:
            up = gap > 0
            taken, added = (self.asks, self.bids) if up else (self.bids, self.asks)
            best_taken = min(taken) if up else max(taken)
            new_best = max(added) + self.tick if up else min(added) - self.tick
            changes["deletes"].append(("SELL" if up else "BUY", best_taken, Decimal(0)))
            del taken[best_taken]
            added[new_best] = self._size()
            changes["inserts"].append(("BUY" if up else "SELL", new_best, added[new_best]))
            far_taken = max(taken) + self.tick if up else min(taken) - self.tick
            taken[far_taken] = self._size()
            changes["inserts"].append(("SELL" if up else "BUY", far_taken, taken[far_taken]))
            far_added = min(added) if up else max(added)
            del added[far_added]
            changes["deletes"].append(("BUY" if up else "SELL", far_added, Decimal(0)))
            return changes
        for _ in range(self.rng.randint(1, 3)):
            side, levels = self.rng.choice((("BUY", self.bids), ("SELL", self.asks)))
            price = self.rng.choice(list(levels))
            levels[price] = self._size()
            changes["updates"].append((side, price, levels[price]))
        return changes


def generate_stream(n: int, seed: int = 1) -> list[tuple[str, str]]:
    """(venue, raw frame) pairs in the venues' wire formats: Vest full depth snapshots, Paradex one
    snapshot then deltas with consecutive seq_no. Both follow one random walk; now and then Vest is
    pushed 25 bps away (a spread worth taking) so the decision code takes both branches."""
    rng = random.Random(seed)
    mid = Decimal(60_000)
    ladder = Ladder(mid, rng)
    frames: list[tuple[str, str]] = []
    seq = 0
    for i in range(n):
        mid = (mid * Decimal(1 + rng.gauss(0, 0.00005))).quantize(Decimal("0.5"))
        if i % 2 == 0:
            skew = Decimal("1.0025") if rng.random() < 0.2 else Decimal(1)
            bids, asks = synthetic_book((mid * skew).quantize(Decimal("0.01")))
            frames.append(
                (
                    "vest",
                    json.dumps(
                        {
                            "channel": "BTC-PERP@depth",
                            "data": {
                                "bids": [[str(p), str(s)] for p, s in bids],
                                "asks": [[str(p), str(s)] for p, s in asks],
                            },
                        }
                    ),
                )
            )
            continue
        seq += 1
        if seq == 1:
            data = {
                "update_type": "s",
                "updates": [],
                "deletes": [],
                "inserts": [{"side": "BUY", "price": str(p), "size": str(s)} for p, s in ladder.bids.items()]
                + [{"side": "SELL", "price": str(p), "size": str(s)} for p, s in ladder.asks.items()],
            }
        else:
            data = {
                "update_type": "d",
                **{
                    kind: [{"side": side, "price": str(p), "size": str(s)} for side, p, s in rows]
                    for kind, rows in ladder.step(mid).items()
                },
            }
        data.update(seq_no=seq, market="BTC-USD-PERP", last_updated_at=int(time.time() * 1000))
        frames.append(
            (
                "paradex",
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "method": "subscription",
                        "params": {"channel": "order_book.BTC-USD-PERP.deltas@15@50ms", "data": data},
                    }
                ),
            )
        )
    return frames


def apply_frame(engine: ArbEngine, venue: str, raw: str) -> None:
    """What the venue's book session does with one frame (the adapters' own parsers)."""
    book = engine.books[venue]
    if venue == "vest":
        parsed = vest.parse_depth_frame(raw)
        book.apply_snapshot(parsed[1], parsed[2])
        return
    frame = paradex.parse_book_frame(raw)
    if frame["snapshot"]:
        book.apply_snapshot(frame["bids"], frame["asks"], frame["seq"], frame["ts"])
    else:
        book.apply_delta(frame["bids"], frame["asks"], frame["seq"], frame["ts"])


def bench_update_to_decision(n: int, pairs: int = 1) -> dict:
    engines = [ArbEngine(parse_arb_config({"pair": f"bench-{i}"}), {}, None) for i in range(pairs)]
    streams = [generate_stream(max(n // pairs, 400), seed=i + 1) for i in range(pairs)]
    for engine, stream in zip(engines, streams, strict=True):
        engine.trading_enabled = True
        for venue, raw in stream[:200]:  # warm-up (and both books valid)
            apply_frame(engine, venue, raw)
    # The pairs' updates interleaved, as they arrive when every pair streams at once.
    frames = [(engines[i], *streams[i][k]) for k in range(200, len(streams[0])) for i in range(pairs)]
    samples, cpu_samples, decisions = [], [], 0
    wall, cpu = time.perf_counter_ns, time.thread_time_ns
    gc.collect()
    gc.freeze()  # as the engine does after start-up: long-lived objects out of the collector's way
    for engine, venue, raw in frames:
        engine.books[venue].updated_at = time.monotonic()  # replayed frames are always fresh
        start, start_cpu = wall(), cpu()
        apply_frame(engine, venue, raw)
        decision = engine.evaluate()
        samples.append((wall() - start) / 1000)
        cpu_samples.append((cpu() - start_cpu) / 1000)
        decisions += decision is not None
    # Wall time includes the scheduler taking the core away (other processes on a shared 2-core box);
    # thread CPU time is the work itself.
    return {
        **summary(samples),
        "decisions": decisions,
        "cpu": summary(cpu_samples),
        "cpu_p50_by_stage": stage_breakdown(engines[0], streams[0][200:]),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "pairs": pairs,
    }


def stage_breakdown(engine: ArbEngine, frames: list[tuple[str, str]]) -> dict:
    """Median CPU µs of each stage: the venue's parser, the order book, our spread + decision."""
    cpu = time.thread_time_ns
    stages: dict[str, list[float]] = {"parse": [], "book": [], "spread_and_decision": []}
    for venue, raw in frames[: min(len(frames), 4000)]:
        t0 = cpu()
        parsed = vest.parse_depth_frame(raw) if venue == "vest" else paradex.parse_book_frame(raw)
        t1 = cpu()
        book = engine.books[venue]
        if venue == "vest":
            book.apply_snapshot(parsed[1], parsed[2])
        elif parsed["snapshot"]:
            book.apply_snapshot(parsed["bids"], parsed["asks"], parsed["seq"], parsed["ts"])
        else:
            book.apply_delta(parsed["bids"], parsed["asks"], parsed["seq"], parsed["ts"])
        t2 = cpu()
        engine.evaluate()
        t3 = cpu()
        for name, value in zip(stages, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            stages[name].append(value / 1000)
    return {name: percentiles.summary(values, 1)["p50"] for name, values in stages.items()}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _trade_loop(configs: list, trades: int) -> dict:
    from arb.store import ArbStore, StoreUnavailable
    from arb.venues import build_venues

    note, probe = None, ArbStore(pool_size=1)
    try:
        probe.load_position(configs[0].pair)
        stores = True
    except StoreUnavailable as exc:
        stores, note = False, f"Postgres unreachable, intent write not measured: {exc}"
    await probe.close()
    venues = await build_venues(configs[0], demo_credentials(), configs)
    runner = PairsRunner(configs, venues, store_factory=lambda size: ArbStore(pool_size=size) if stores else None)
    await runner.start()
    for engine in runner.engines:
        engine.trading_enabled = False  # the bench drives decisions itself; its books still stream and are priced
    for i in range(trades):
        engine = runner.engines[(i // 2) % len(runner.engines)]  # an entry then its exit, pair after pair
        cfg = engine.cfg
        long_side = i % 2 == 0
        plans = [
            LegPlan("vest", cfg.vest_market, "BUY" if long_side else "SELL", cfg.size, not long_side),
            LegPlan("paradex", cfg.paradex_market, "SELL" if long_side else "BUY", cfg.size, not long_side),
        ]
        spreads = compute_spreads(engine.books, cfg.size, cfg.fees_bps)
        detected = time.perf_counter()
        await engine.run_intent(
            "entry" if long_side else "exit",
            "long_vest_short_paradex",
            plans,
            spreads.best_entry()[1] if spreads else None,
            detected,
        )
        await asyncio.sleep(0.01)
    samples = [sample for engine in runner.engines for sample in engine.latencies_us]
    await runner.stop()
    if stores:
        store = ArbStore(pool_size=1)
        for cfg in configs:
            _cleanup(store, cfg.pair)
        await store.close()
    result = {**summary(samples), "pairs": len(configs)}
    return {**result, "note": note} if note else result


def _cleanup(store, pair: str) -> None:
    from sqlalchemy import delete

    from core.models.arb import ArbIntent, ArbPosition

    def wipe(session):
        session.execute(delete(ArbIntent).where(ArbIntent.pair == pair))
        session.execute(delete(ArbPosition).where(ArbPosition.pair == pair))

    store._run(wipe)


def bench_detect_to_sent(trades: int, pairs: int = 1, process_per_pair: bool = False) -> dict:
    vest_port, paradex_port = _free_port(), _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="arb-bench-"))
    # Round trips cost fees and slippage: a real loss limit would stop the bench half-way (kill switch).
    sim_cfg = {
        "daily_loss_limit_usd": 10**9,
        "sim": {"vest_port": vest_port, "paradex_port": paradex_port, "spread_every_s": [0, 0]},
        "pairs": [
            {"pair": f"bench-{os.getpid()}-{base}", "vest_market": f"{base}-PERP", "paradex_market": f"{base}-USD-PERP"}
            for base in list(BASE_PRICES)[:pairs]
        ],
    }
    (workdir / "config.yaml").write_text(json.dumps({"arb": sim_cfg}))  # JSON is YAML
    env = {**os.environ, "ARISTOBOT_CONFIG": str(workdir / "config.yaml"), "ARISTOBOT_LOG_LEVEL": "WARNING"}
    # The simulators stand in for remote venues: they run at ordinary priority, not the engine's.
    sims = subprocess.Popen(
        [sys.executable, "-m", "sim.perp"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=ordinary_scheduling,
    )
    others: list[subprocess.Popen] = []
    try:
        for port in (vest_port, paradex_port):
            if not wait_for_port(port, timeout=20):
                raise RuntimeError(f"perp simulators did not open port {port}")
        if not process_per_pair:
            return asyncio.run(_trade_loop(parse_arb_pairs(sim_cfg), trades))
        others = _engine_per_pair(sim_cfg, workdir, env)
        result = asyncio.run(_trade_loop(parse_arb_pairs({**sim_cfg, "pairs": sim_cfg["pairs"][:1]}), trades))
        return {**result, "pairs": pairs, "layout": "process per pair"}
    finally:
        for process in others:
            process.send_signal(signal.SIGINT)
        for process in others:
            process.wait(60)
        if others:
            from arb.store import ArbStore

            store = ArbStore(pool_size=1)
            for pair in sim_cfg["pairs"][1:]:
                _cleanup(store, pair["pair"])
        sims.terminate()
        sims.wait(10)


def _engine_per_pair(sim_cfg: dict, workdir: Path, env: dict) -> list[subprocess.Popen]:
    """`python -m arb` for every pair but the first, once each has published its status (its books stream)."""
    from core.infra.bus import arb_status_key, get_redis

    shared = {key: value for key, value in sim_cfg.items() if key != "pairs"}
    processes = []
    for pair in sim_cfg["pairs"][1:]:
        path = workdir / f"{pair['pair']}.yaml"
        path.write_text(json.dumps({"arb": {**shared, **pair}}))
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "arb"],
                env={**env, "ARISTOBOT_CONFIG": str(path)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    deadline = time.monotonic() + 120
    while not all(get_redis().exists(arb_status_key(p["pair"])) for p in sim_cfg["pairs"][1:]):
        if time.monotonic() > deadline or any(process.poll() is not None for process in processes):
            raise RuntimeError("the per-pair engine processes did not all start")
        time.sleep(0.5)
    return processes


def markdown(result: dict) -> str:
    u, d = result["update_to_decision_us"], result["detect_to_both_sent_us"]
    return "\n".join(
        [
            "# Arbitrage engine benchmark",
            "",
            f"`aristobot bench arb --pairs {u.get('pairs', 1)} --json` on this machine "
            f"({os.cpu_count()} cores, shared), "
            f"{time.strftime('%Y-%m-%d', time.gmtime())}.",
            "",
            "| measure | n | p50 (µs) | p99 (µs) | max (µs) | target p99 |",
            "|---|---|---|---|---|---|",
            "| update-to-decision (parse + book + spread + decision), wall clock "
            f"| {u['n']} | {u['p50']} | {u['p99']} "
            f"| {u['max']} | < {TARGETS_US['update_to_decision_p99']:.0f} µs |",
            "| update-to-decision, thread CPU time (the work without preemption) "
            f"| {u['cpu']['n']} | {u['cpu']['p50']} "
            f"| {u['cpu']['p99']} | {u['cpu']['max']} | |",
            "| detection-to-both-orders-sent (intent in Postgres + sign + send, vs simulators) "
            f"| {d['n']} | {d['p50']} "
            f"| {d['p99']} | {d['max']} | < {TARGETS_US['detect_to_both_sent_p99'] / 1000:.0f} ms |",
            "",
            f"CPU µs per stage (median): {u['cpu_p50_by_stage']}.",
            "",
            f"Load average (1 min) while measuring: {u['load_average_1m']} on {os.cpu_count()} cores.",
            "",
            f"Both targets met (wall clock): **{result['targets_met']}**. The product promise (orders out within "
            f"500 ms of a spread that lasts < 1 s) holds with {500_000 / d['p99']:.0f}x headroom at p99.",
            "",
            'How it is measured: see the docstring of `bench/arb.py`. "Sent" is the aiohttp trace event for '
            "the last request chunk written to the socket of the slower leg; the intent row is committed "
            "before either leg is sent (`synchronous_commit=off`, see `arb/store.py`).",
            "",
        ]
    )


def ordinary_scheduling() -> None:
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    os.setpriority(os.PRIO_PROCESS, 0, 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aristobot bench arb")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--updates", type=int, default=20_000)
    parser.add_argument("--trades", type=int, default=1000)
    parser.add_argument(
        "--pairs", type=int, default=1, choices=range(1, len(BASE_PRICES) + 1), metavar=f"1-{len(BASE_PRICES)}"
    )
    parser.add_argument("--process-per-pair", action="store_true", help="the other pairs each in its own process")
    parser.add_argument("--markdown", type=Path, help="also write the result as markdown to this file")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR)
    scheduling = set_priority(parse_arb_config({}))  # measured as `python -m arb` runs: same CPU scheduling
    result = {
        "update_to_decision_us": bench_update_to_decision(args.updates, args.pairs),
        "detect_to_both_sent_us": bench_detect_to_sent(args.trades, args.pairs, args.process_per_pair),
        "scheduling": scheduling,
    }
    result["targets_us"] = TARGETS_US
    result["targets_met"] = (
        result["update_to_decision_us"]["p99"] < TARGETS_US["update_to_decision_p99"]
        and result["detect_to_both_sent_us"]["p99"] < TARGETS_US["detect_to_both_sent_p99"]
    )
    if args.markdown:
        args.markdown.write_text(markdown(result))
    if args.json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
