"""Many pairs in one engine process (arb/runner.py) against the perp simulators: each pair trades, pauses and
publishes on its own; a pair whose market the venue does not list is refused at start."""

from __future__ import annotations

import asyncio
import json
import secrets
import time

import pytest

from arb.config import parse_arb_pairs
from arb.runner import PairsRunner, SharedAccountReads, status_publisher
from arb.store import ArbStore
from arb.venues import build_venues
from core import arb_commands
from core.infra.bus import ARB_COMMANDS, ARB_PAIRS, arb_status_key, get_redis
from core.infra.config import ConfigError
from tests.arb.conftest import inject, new_credentials, sim_positions, wait_for

ZERO_LEGS = {"vest": 0, "paradex": 0}


def pairs_config(sims, *pairs: dict) -> list:
    return parse_arb_pairs(
        {
            "leg_timeout_s": 0.6,
            "retry_backoff_ms": 10,
            "max_retries": 2,
            "stale_book_ms": 1500,
            "status_interval_s": 0.2,
            "health_interval_s": 0.2,
            "max_position": "0.01",
            "vest": {"rest_url": sims.vest_rest, "ws_url": sims.vest_ws, "taker_fee_bps": "1"},
            "paradex": {"rest_url": sims.paradex_rest, "ws_url": sims.paradex_ws, "taker_fee_bps": "2"},
            "pairs": list(pairs),
        }
    )


def market(base: str) -> dict:
    return {"vest_market": f"{base}-PERP", "paradex_market": f"{base}-USD-PERP"}


def queue(action: str, pair: str) -> None:
    command = arb_commands.Command(action, pair, 1, "alice", time.time(), 0)
    get_redis().rpush(ARB_COMMANDS, command.to_json())


async def started(sims, configs, creds) -> PairsRunner:
    runner = PairsRunner(
        configs,
        await build_venues(configs[0], creds, configs),
        status_publisher([cfg.pair for cfg in configs], get_redis),
        lambda: arb_commands.take(get_redis()),
    )
    await runner.start()
    books = [book for engine in runner.engines for book in engine.books.values()]
    await wait_for(lambda: all(book.valid for book in books), 10, "every pair's books")
    return runner


def test_two_pairs_trade_independently_and_pausing_one_leaves_the_other_trading(sims, infra, redis_client):
    creds, tag = new_credentials(sims), secrets.token_hex(3)
    btc, eth = f"btc-{tag}", f"eth-{tag}"
    configs = pairs_config(
        sims,
        {"pair": btc, **market("BTC"), "exit_threshold_bps": 0},
        {"pair": eth, **market("ETH"), "exit_threshold_bps": 0, "size": "0.1", "max_position": "0.1"},
    )

    async def go():
        runner = await started(sims, configs, creds)
        try:
            queue("pause", btc)
            queue("pause", "not-a-pair")  # answered (refused) by the first pair's engine, never lost
            await wait_for(lambda: runner.engine(btc).paused_by == "alice", 5, "BTC paused")
            assert runner.engine(eth).paused_by is None and runner.states() == f"{btc} paused, {eth} running"
            inject(sims, "paradex", 30, 0.8)
            await wait_for(lambda: runner.engine(eth).counters["entries"] == 1, 10, "ETH entered")
            await asyncio.sleep(0.5)
            assert runner.engine(btc).counters["entries"] == 0 and runner.engine(btc).flat
            assert sim_positions(sims, creds, "BTC") == ZERO_LEGS
            assert sim_positions(sims, creds, "ETH") == runner.engine(eth).sizes != ZERO_LEGS
            refused = [e for e in runner.engine(btc).events if e["event"] == "operator_command_refused"]
            assert refused and "not-a-pair" in refused[0]["reason"]

            published = json.loads(redis_client.get(arb_status_key(btc)))
            assert json.loads(redis_client.get(ARB_PAIRS)) == [btc, eth] and published["state"] == "paused"
            await wait_for(lambda: json.loads(redis_client.get(arb_status_key(eth)))["position"]["direction"], 3, "ETH")

            queue("resume", btc)
            await wait_for(lambda: runner.engine(btc).paused_by is None, 5, "BTC resumed")
            inject(sims, "paradex", 30, 0.8)
            await wait_for(lambda: runner.engine(btc).counters["entries"] == 1, 10, "BTC entered")
            assert runner.engine(eth).counters["entries"] == 1  # ETH is at its max position: it stays as it was
            assert sim_positions(sims, creds, "BTC") == runner.engine(btc).sizes != ZERO_LEGS
        finally:
            clean = await runner.stop()
        assert clean
        store = ArbStore()
        try:
            for pair in (btc, eth):  # each pair's own persisted position
                assert store.load_position(pair)["sizes"] == runner.engine(pair).sizes
        finally:
            await store.close()

    asyncio.run(go())


def test_a_pair_whose_market_the_venue_does_not_list_is_refused_at_start(sims, infra):
    creds, tag = new_credentials(sims), secrets.token_hex(3)
    configs = pairs_config(
        sims,
        {"pair": f"btc-{tag}", **market("BTC")},
        {"pair": f"doge-{tag}", "vest_market": "DOGE-PERP", "paradex_market": "DOGE-USD-PERP"},
    )

    async def go():
        runner = PairsRunner(configs, await build_venues(configs[0], creds, configs), None, None, lambda _: None)
        try:
            with pytest.raises(ConfigError) as caught:
                await runner.start()
        finally:
            await runner.close_venues()
        return str(caught.value), runner

    message, runner = asyncio.run(go())
    assert message.startswith(f"arb: config.yaml: pair doge-{tag}: vest_market 'DOGE-PERP' is not a market on vest")
    assert "\n" not in message and not any(engine.trading_enabled for engine in runner.engines)


def test_the_pairs_share_each_venues_account_read_and_keep_more_connections_warm(sims):
    creds = new_credentials(sims)
    configs = pairs_config(sims, {"pair": "one", **market("BTC")}, {"pair": "two", **market("ETH")})

    async def go():
        venues = await build_venues(configs[0], creds, configs)
        try:
            reads = SharedAccountReads(venues)
            together = await asyncio.gather(*(reads.read(venue) for venue in ("vest", "vest", "paradex", "paradex")))
            await asyncio.sleep(SharedAccountReads.WINDOW_S * 2)
            later = await reads.read("vest")
            await venues["paradex"].keep_ready()
            warm = len(venues["paradex"]._http._client._idle)  # two pairs' trades at once: four legs' connections
        finally:
            for venue in venues.values():
                await venue.close()
        return together, later, warm

    (vest_a, vest_b, paradex_a, paradex_b), later, warm = asyncio.run(go())
    assert warm == 4
    assert vest_a is vest_b and paradex_a is paradex_b and vest_a is not paradex_a
    assert later is not vest_a and later[0].equity == vest_a[0].equity  # a new read, of the same account
