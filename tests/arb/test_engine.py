"""The engine in-process against the perp simulator faces and the real Postgres: the journeys and the
fault list (rejected leg, leg with unknown result, socket drops, gaps, stale books, Postgres down)."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from arb.engine import ArbEngine
from arb.store import ArbStore
from arb.venues import build_venues
from core.halt import HALTED, set_trading_halted
from core.infra.db import new_session, session_scope
from core.models.arb import ArbIntent, ArbLeg, ArbPosition
from tests.arb.conftest import (
    TcpProxy,
    arb_config,
    events,
    inject,
    new_credentials,
    sim_positions,
    start_engine,
    wait_for,
)

ZERO = D(0)


def intents(pair: str) -> list[ArbIntent]:
    with new_session() as session:
        rows = session.scalars(select(ArbIntent).where(ArbIntent.pair == pair).order_by(ArbIntent.id)).all()
        for row in rows:
            _ = row.legs
        return list(rows)


def test_a_spread_lasting_under_a_second_is_captured_and_closed_when_it_converges(sims, infra):
    creds, cfg = new_credentials(sims), arb_config(sims)

    async def go():
        engine = await start_engine(cfg, creds)
        try:
            inject(sims, "paradex", 30, 0.6)  # paradex rich for 600 ms
            await wait_for(lambda: events(engine, "entry_executed"), 3, "entry")
            entered = events(engine, "entry_executed")[0]
            # only the injected spread clears the threshold: an entry at this edge was taken while it lasted
            assert D(str(entered["spread_bps"])) >= cfg.entry_threshold_bps
            assert entered["direction"] == "long_vest_short_paradex"
            assert sim_positions(sims, creds) == {"vest": D("0.01"), "paradex": D("-0.01")}
            assert entered["detect_to_sent_us"] > 0  # measured (the figure itself: `aristobot bench arb`)
            await wait_for(lambda: events(engine, "exit_executed"), 8, "exit after convergence")
            assert sim_positions(sims, creds) == {"vest": ZERO, "paradex": ZERO}
            assert engine.flat and engine.realized_pnl != 0
            assert D(events(engine, "spread_detected")[0]["spread_bps"]) >= 8
        finally:
            await engine.stop()

    asyncio.run(go())
    entry, exit_ = intents(cfg.pair)[:2]
    assert (entry.kind, entry.state, exit_.kind, exit_.state) == ("entry", "done", "exit", "done")
    assert entry.before == {"vest": "0", "paradex": "0"}
    assert sorted((leg.venue, leg.side, leg.state, leg.filled_size) for leg in entry.legs) == [
        ("paradex", "SELL", "filled", D("0.01")),
        ("vest", "BUY", "filled", D("0.01")),
    ]
    assert all(leg.reduce_only for leg in exit_.legs) and all(leg.avg_price > 0 for leg in exit_.legs)
    with new_session() as session:
        position = session.get(ArbPosition, cfg.pair)
        assert position.direction is None and position.sizes == {"vest": "0", "paradex": "0"}
        assert position.realized_pnl != 0


def test_a_rejected_leg_is_retried_with_a_new_client_id_and_the_trade_completes(sims, infra):
    creds, cfg = new_credentials(sims), arb_config(sims)

    async def go():
        engine = await start_engine(cfg, creds)
        try:
            sims.paradex.faults.reject_next_order = True
            inject(sims, "paradex", 30, 0.8)
            await wait_for(lambda: events(engine, "entry_executed"), 3, "entry")
            (retry,) = events(engine, "leg_retry")
            assert retry["venue"] == "paradex" and retry["attempt"] == 2 and "InvalidOrder" in retry["reason"]
            assert sim_positions(sims, creds) == {"vest": D("0.01"), "paradex": D("-0.01")}
        finally:
            await engine.stop()

    asyncio.run(go())
    legs = intents(cfg.pair)[0].legs
    paradex_legs = [leg for leg in legs if leg.venue == "paradex"]
    assert [(leg.attempt, leg.state) for leg in paradex_legs] == [(1, "rejected"), (2, "filled")]
    assert len({leg.client_id for leg in legs}) == 3


def test_a_leg_rejected_every_time_is_rolled_back_so_no_directional_position_is_left(sims, infra):
    creds, cfg = new_credentials(sims), arb_config(sims, max_retries=2)
    stop = threading.Event()

    def keep_rejecting():
        while not stop.is_set():
            sims.paradex.faults.reject_next_order = True
            time.sleep(0.001)

    async def go():
        engine = await start_engine(cfg, creds)
        rejecter = threading.Thread(target=keep_rejecting, daemon=True)
        rejecter.start()
        try:
            inject(sims, "paradex", 30, 0.8)
            await wait_for(lambda: events(engine, "rollback_executed"), 5, "rollback")
            assert len(events(engine, "leg_retry")) == 2
            (failed,) = events(engine, "entry_failed")
            assert {leg["venue"]: leg["state"] for leg in failed["legs"]} == {"vest": "filled", "paradex": "rejected"}
            (unhedged,) = events(engine, "unhedged_position")
            assert unhedged["venue"] == "vest" and unhedged["net"] == "0.01" and unhedged["level"] == "error"
            (rollback,) = events(engine, "leg_rollback")
            assert (rollback["venue"], rollback["side"], rollback["size"]) == ("vest", "SELL", "0.01")
            assert sim_positions(sims, creds) == {"vest": ZERO, "paradex": ZERO}
            await wait_for(lambda: not engine.unhedged, 2, "hedge restored")
            stop.set()  # paradex takes orders again, the spread is still there: the cooldown holds entries back
            sims.paradex.faults.reject_next_order = False
            await asyncio.sleep(0.5)
            assert not events(engine, "entry_executed")
            assert sim_positions(sims, creds) == {"vest": ZERO, "paradex": ZERO}
        finally:
            stop.set()
            sims.paradex.faults.reject_next_order = False
            await engine.stop()

    asyncio.run(go())
    entry, rollback = intents(cfg.pair)[:2]
    assert (entry.state, rollback.kind, rollback.state) == ("failed", "rollback", "done")
    assert [leg.reduce_only for leg in rollback.legs] == [True]


def test_a_leg_with_unknown_result_is_resolved_from_the_venue_position_not_resent(sims, infra):
    creds, cfg = new_credentials(sims), arb_config(sims, leg_timeout_s=0.4)

    async def go():
        engine = await start_engine(cfg, creds)
        try:
            sims.paradex.faults.lose_next_response = True  # executed, the reply never comes
            inject(sims, "paradex", 30, 1.5)
            await wait_for(lambda: events(engine, "entry_executed"), 5, "entry")
            (unknown,) = events(engine, "leg_unknown")
            assert unknown["venue"] == "paradex" and "TimeoutError" in unknown["reason"]
            (resolved,) = events(engine, "leg_resolved")
            assert resolved["filled"] == "0.01" and resolved["position_now"] == "-0.01"
            # exactly one paradex order: the leg was not sent twice
            assert sim_positions(sims, creds) == {"vest": D("0.01"), "paradex": D("-0.01")}
        finally:
            await engine.stop()

    asyncio.run(go())
    paradex_legs = [leg for leg in intents(cfg.pair)[0].legs if leg.venue == "paradex"]
    assert [(leg.attempt, leg.state) for leg in paradex_legs] == [(1, "filled")]


def test_socket_drop_mid_trade_completes_the_trade_and_reconnects_within_5s(sims, infra):
    creds, cfg = new_credentials(sims), arb_config(sims)

    async def go():
        engine = await start_engine(cfg, creds)
        try:
            resyncs = {v: f.resyncs for v, f in engine.feeds.items()}
            sims.vest.faults.delay_next_response_s = 0.3  # the vest leg is in flight ...
            inject(sims, "paradex", 30, 0.8)
            await wait_for(lambda: events(engine, "spread_detected"), 3, "detection")
            sims.vest.faults.drop_ws = sims.paradex.faults.drop_ws = True  # ... when both sockets drop
            await wait_for(lambda: events(engine, "entry_executed"), 3, "entry")
            await wait_for(lambda: all(f.resyncs > resyncs[v] for v, f in engine.feeds.items()), 3, "drop seen")
            await wait_for(lambda: all(b.valid for b in engine.books.values()), 5, "books back")
            assert sim_positions(sims, creds) == {"vest": D("0.01"), "paradex": D("-0.01")}
            await wait_for(lambda: events(engine, "exit_executed"), 8, "trading continues after reconnect")
        finally:
            await engine.stop()

    asyncio.run(go())


def test_a_sequence_gap_resyncs_the_book_and_no_decision_uses_a_stale_or_broken_book(sims, infra):
    creds, cfg = new_credentials(sims), arb_config(sims, stale_book_ms=300)

    async def go():
        engine = await start_engine(cfg, creds)
        try:
            feed = engine.feeds["paradex"]
            before = feed.resyncs
            sims.paradex.faults.gap_next_book = True
            await wait_for(lambda: feed.resyncs > before, 3, "gap detected")
            assert engine.evaluate() is None or engine.books["paradex"].valid
            await wait_for(lambda: engine.books["paradex"].valid, 3, "resynced")
            # a book older than the age limit is never traded on, whatever the spread
            await engine.feeds["vest"].stop()
            await asyncio.sleep(0.4)
            inject(sims, "paradex", 40, 0.5)
            for _ in range(10):
                await asyncio.sleep(0.05)
                assert engine.evaluate() is None
            assert engine.books["vest"].valid and engine.books["vest"].age() > 0.3
            assert "vest" in {e["venue"] for e in events(engine, "book_stale")}
        finally:
            await engine.stop()

    asyncio.run(go())
    assert intents(cfg.pair) == []


@pytest.mark.slow  # waits out several resyncs in real time
def test_malformed_and_out_of_order_book_frames_force_a_resync(sims, infra):
    """A local websocket server speaking Paradex's book protocol badly, then correctly."""
    from aiohttp import web

    script = [
        [
            '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"order_book.BTC-USD-PERP.x","data":'
            '{"update_type":"s","seq_no":1,"market":"BTC-USD-PERP","inserts":[{"side":"BUY","price":"59990","size":"5"},'
            '{"side":"SELL","price":"60010","size":"5"}]}}}',
            "{not json",
        ],
        [
            '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"order_book.BTC-USD-PERP.x","data":'
            '{"update_type":"s","seq_no":1,"market":"BTC-USD-PERP","inserts":[{"side":"BUY","price":"59990","size":"5"},'
            '{"side":"SELL","price":"60010","size":"5"}]}}}',
            '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"order_book.BTC-USD-PERP.x","data":'
            '{"update_type":"d","seq_no":3,"market":"BTC-USD-PERP","inserts":[{"side":"BUY","price":"60500","size":"1"}]}}}',
        ],
    ]
    good = (
        '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"order_book.BTC-USD-PERP.x","data":'
        '{"update_type":"s","seq_no":%d,"market":"BTC-USD-PERP","inserts":[{"side":"BUY","price":"59995","size":"5"},'
        '{"side":"SELL","price":"60005","size":"5"}]}}}'
    )
    connections = []

    async def ws(request):
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        connections.append(time.monotonic())
        frames = script[len(connections) - 1] if len(connections) <= len(script) else None
        await sock.receive()  # the subscribe request
        if frames is not None:
            for frame in frames:
                await sock.send_str(frame)
            await asyncio.sleep(0.05)
            await sock.close()
            return sock
        seq = 1
        while not sock.closed:
            await sock.send_str(good % seq)
            seq += 1
            await asyncio.sleep(0.05)
        return sock

    async def go():
        app = web.Application()
        app.add_routes([web.get("/ws", ws)])
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        creds = new_credentials(sims)
        cfg = arb_config(sims, paradex={"ws_url": f"ws://127.0.0.1:{port}/ws"})
        engine = await start_engine(cfg, creds)
        try:
            await wait_for(lambda: len(connections) >= 3 and engine.books["paradex"].valid, 5, "good feed")
            book = engine.books["paradex"]
            # nothing from the gapped delta (60500) survived; the book is the good snapshot
            assert book.best_bid().price == D(59995) and book.best_ask().price == D(60005)
            assert engine.feeds["paradex"].resyncs >= 2
        finally:
            await engine.stop()
            await runner.cleanup()

    asyncio.run(go())


def test_postgres_briefly_unreachable_means_no_trade_before_and_no_lost_result_after(sims, infra):
    from urllib.parse import urlsplit

    from core.infra.config import get_settings

    url = get_settings().database_url
    proxy = TcpProxy(urlsplit(url.replace("postgresql+psycopg", "http")).port)
    proxied = url.replace(f":{proxy.target_port}/", f":{proxy.port}/")
    creds, cfg = new_credentials(sims), arb_config(sims)

    async def go():
        store = ArbStore(proxied)
        engine = await start_engine(cfg, creds, store)
        try:
            proxy.down()
            inject(sims, "paradex", 30, 0.6)
            await wait_for(lambda: events(engine, "intent_write_failed"), 8, "intent refused")
            assert sim_positions(sims, creds) == {"vest": ZERO, "paradex": ZERO}  # no record, no trade
            await asyncio.sleep(0.7)
            proxy.up()
            # Postgres goes away after the intent is written, while the legs are out
            sims.paradex.faults.delay_next_response_s = 0.8
            inject(sims, "paradex", 30, 0.6)
            await wait_for(lambda: intents(cfg.pair), 5, "intent row")
            proxy.down()
            await wait_for(lambda: events(engine, "entry_executed"), 5, "entry")
            assert store.backlog, "leg results must wait for Postgres, not vanish"
            assert sim_positions(sims, creds) == {"vest": D("0.01"), "paradex": D("-0.01")}
            proxy.up()
            await wait_for(lambda: not store.backlog, 10, "backlog flushed")
        finally:
            await engine.stop()

    asyncio.run(go())
    entry = intents(cfg.pair)[0]
    assert entry.state == "done" and {leg.state for leg in entry.legs} == {"filled"}


def test_position_is_restored_after_restart_and_reconciled_with_the_venues(sims, infra):
    creds = new_credentials(sims)
    cfg = arb_config(sims, exit_threshold_bps=0)  # keep the position open

    async def go():
        engine = await start_engine(cfg, creds)
        inject(sims, "paradex", 30, 0.6)
        await wait_for(lambda: events(engine, "entry_executed"), 3, "entry")
        await engine.stop()
        engine = await start_engine(cfg, creds)
        (restored,) = events(engine, "position_restored")
        assert restored["sizes"] == {"vest": "0.01", "paradex": "-0.01"}
        assert not events(engine, "position_reconciled") and engine.direction == "long_vest_short_paradex"
        await engine.stop()
        # someone closed the vest leg by hand while we were down: the venues win, the remainder is closed
        sims.call(lambda: sims.vest.ledger.accounts[creds.vest_api_key].positions.update(BTC=(ZERO, ZERO)))
        engine = await start_engine(cfg, creds)
        assert events(engine, "position_reconciled")[0]["venues"] == {"vest": "0", "paradex": "-0.01"}
        assert events(engine, "unhedged_position")[0]["venue"] == "paradex"
        assert sim_positions(sims, creds) == {"vest": ZERO, "paradex": ZERO}
        await engine.stop()

    asyncio.run(go())


def test_a_stop_before_the_start_finished_keeps_the_persisted_position(sims, infra):
    """Stopped while still connecting (a signal during start-up), the engine has no position in memory yet:
    saving it would write zeros over the persisted one, its cash and entry prices with it."""
    creds = new_credentials(sims)
    cfg = arb_config(sims, exit_threshold_bps=0)  # keep the position open

    async def go():
        engine = await start_engine(cfg, creds)
        inject(sims, "paradex", 30, 0.6)
        await wait_for(lambda: events(engine, "entry_executed"), 3, "entry")
        cash = engine.cash
        await engine.stop()
        interrupted = ArbEngine(cfg, await build_venues(cfg, creds), ArbStore())
        await interrupted.stop()
        engine = await start_engine(cfg, creds)
        (restored,) = events(engine, "position_restored")
        assert restored["sizes"] == {"vest": "0.01", "paradex": "-0.01"}
        assert not events(engine, "position_reconciled") and engine.cash == cash
        await engine.stop()

    asyncio.run(go())


def test_daily_loss_limit_trips_the_kill_switch_closes_and_blocks_new_entries(sims, infra):
    creds, cfg = new_credentials(sims), arb_config(sims, daily_loss_limit_usd="0.01", exit_threshold_bps=0)

    async def go():
        engine = await start_engine(cfg, creds)
        try:
            inject(sims, "paradex", 30, 2.0)  # long enough to be seen by a starved loop
            await wait_for(lambda: events(engine, "kill_switch"), 5, f"kill switch; events: {list(engine.events)[-8:]}")
            assert events(engine, "kill_switch")[0]["reason"] == "daily_loss_limit"
            await wait_for(lambda: engine.flat, 5, "position closed")
            entries = len(events(engine, "entry_executed"))
            inject(sims, "paradex", 40, 0.5)
            await asyncio.sleep(0.8)
            assert len(events(engine, "entry_executed")) == entries
            assert engine.snapshot()["state"] == "halted"
        finally:
            await engine.stop()

    asyncio.run(go())
    with new_session() as session:
        assert session.get(ArbPosition, cfg.pair).halted_reason == "daily_loss_limit"


def test_dry_run_detects_and_logs_but_never_sends(sims, infra):
    creds, cfg = new_credentials(sims), arb_config(sims, dry_run=True)

    async def go():
        engine = await start_engine(cfg, creds)
        try:
            inject(sims, "paradex", 30, 0.5)
            await wait_for(lambda: events(engine, "spread_detected"), 3, "detection")
            assert events(engine, "spread_detected")[0]["dry_run"] is True
            await asyncio.sleep(0.6)
            assert engine.snapshot()["state"] == "dry_run"
        finally:
            await engine.stop()

    asyncio.run(go())
    assert sim_positions(sims, creds) == {"vest": ZERO, "paradex": ZERO}
    assert intents(cfg.pair) == []
    with new_session() as session:
        assert session.scalars(select(ArbLeg).join(ArbIntent).where(ArbIntent.pair == cfg.pair)).all() == []


def test_venue_down_pauses_entries_and_after_it_is_back_books_reconnect_within_5s(infra):
    from sim.perp.launcher import start_perp_sims_in_thread

    own = start_perp_sims_in_thread(spread_every_s=(0, 0), seed=11)  # this test stops a face
    creds, cfg = new_credentials(own), arb_config(own, health_interval_s=0.1, risk={"poll_interval_s": 0.1})

    def run_on_sims(coro):
        return asyncio.run_coroutine_threadsafe(coro, own.loop).result(10)

    async def go():
        engine = await start_engine(cfg, creds)
        try:
            port = own.vest.port
            run_on_sims(own.vest.stop())
            await wait_for(lambda: engine.paused_reason == "venue_unhealthy:vest", 5, "health kill switch")
            assert events(engine, "kill_switch")[-1]["reason"] == "venue_unhealthy:vest"
            assert not engine.books["vest"].valid and engine.evaluate() is None
            inject(own, "paradex", 40, 1.0)
            await asyncio.sleep(0.3)
            assert not events(engine, "spread_detected")  # no trading on a dead venue's book
            await asyncio.sleep(0.8)
            run_on_sims(own.vest.start(port))
            await wait_for(lambda: engine.books["vest"].valid, 5, "vest book after the venue is back")
            await wait_for(lambda: engine.paused_reason is None, 5, "kill switch cleared")
            inject(own, "paradex", 30, 0.8)
            await wait_for(lambda: events(engine, "entry_executed"), 3, "trading resumed")
        finally:
            await engine.stop()

    try:
        asyncio.run(go())
    finally:
        own.stop()


def test_a_silent_feed_is_restarted_by_the_watchdog(sims, infra):
    """A websocket that stays open but stops sending (no frames, no error) is torn down and reconnected."""
    from aiohttp import web

    connections = []
    snapshot = (
        '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"order_book.BTC-USD-PERP.x","data":'
        '{"update_type":"s","seq_no":1,"market":"BTC-USD-PERP","inserts":[{"side":"BUY","price":"59995",'
        '"size":"5"},{"side":"SELL","price":"60005","size":"5"}]}}}'
    )

    async def ws(request):
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        connections.append(time.monotonic())
        await sock.receive()
        await sock.send_str(snapshot)
        await asyncio.sleep(30)  # then silence
        return sock

    async def go():
        app = web.Application()
        app.add_routes([web.get("/ws", ws)])
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        cfg = arb_config(sims, watchdog_s=0.5, paradex={"ws_url": f"ws://127.0.0.1:{port}/ws"})
        engine = await start_engine(cfg, new_credentials(sims))
        try:
            await wait_for(lambda: len(connections) >= 2, 5, "reconnect after silence")
            (restart, *_) = events(engine, "book_watchdog_restart")
            assert restart["venue"] == "paradex" and restart["silent_s"] >= 0.5
            assert connections[1] - connections[0] < 2.5
        finally:
            await engine.stop()
            await runner.cleanup()

    asyncio.run(go())


def test_the_administrators_trading_halt_blocks_entries_until_resumed(sims, infra):
    def switch(on: bool) -> None:
        with session_scope() as session:
            set_trading_halted(session, on)

    creds, cfg = new_credentials(sims), arb_config(sims)

    async def go():
        switch(True)
        engine = await start_engine(cfg, creds)
        try:
            assert engine.admin_halted and engine.snapshot()["reason"] == HALTED
            inject(sims, "paradex", 30, 0.6)
            await asyncio.sleep(1.0)
            assert events(engine, "entry_executed") == [] and engine.flat
            await asyncio.to_thread(switch, False)
            await wait_for(lambda: not engine.admin_halted, 5, "halt lifted")
            assert events(engine, "trading_resumed")
            inject(sims, "paradex", 30, 0.6)
            await wait_for(lambda: events(engine, "entry_executed"), 3, "entry after the halt")
        finally:
            switch(False)
            await engine.stop()

    asyncio.run(go())
