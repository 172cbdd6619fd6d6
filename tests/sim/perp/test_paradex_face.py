"""ParadexVenue against the Paradex simulator face over real loopback HTTP/WS, Stark signatures verified."""

import asyncio
import secrets
from decimal import Decimal as D

import pytest

from core.exchanges import errors
from core.exchanges.perp import paradex, stark
from core.exchanges.perp.venue import PerpOrderRequest
from sim.perp.paradex_face import CHAIN_ID

ETH_ADDRESS = "0x" + "ab" * 20


def new_venue(sims) -> paradex.ParadexVenue:
    private = secrets.randbelow(stark.EC_ORDER - 1) + 1
    account = secrets.randbits(200)
    signer = paradex.ParadexSigner(private, account, CHAIN_ID)
    return paradex.ParadexVenue(rest_url=sims.paradex_rest, ws_url=sims.paradex_ws, signer=signer)


def run(coro_fn):
    return asyncio.run(coro_fn())


def test_onboard_auth_market_order_fills_from_presigned_pool(sims):
    venue = new_venue(sims)

    async def go():
        try:
            await venue.onboard(ETH_ADDRESS)
            pool = venue.add_presigned_pool("BTC-USD-PERP", D("0.01"), depth=2)
            assert pool.available("BUY") == 2
            pooled_ts = pool._orders["BUY"][0].timestamp_ms
            result = await venue.place_order(PerpOrderRequest("BTC-USD-PERP", "BUY", D("0.01"), None, client_id="a1"))
            # the venue verified the pre-signed order (its timestamp is now used) and the pool refilled
            assert (venue.signer.account, pooled_ts) in sims.call(set, sims.paradex.used_timestamps)
            assert pooled_ts not in [o.timestamp_ms for o in pool._orders["BUY"]] and pool.available("BUY") == 2
            assert result.status == "FILLED" and result.filled_size == D("0.01") and result.client_id == "a1"
            (position,) = await venue.positions()
            assert position.market == "BTC-USD-PERP" and position.size == D("0.01")
            assert (await venue.account()).equity > 0
        finally:
            await venue.close()

    run(go)


def test_limit_orders_rest_list_and_cancel(sims):
    venue = new_venue(sims)

    async def go():
        try:
            await venue.onboard(ETH_ADDRESS)
            req = PerpOrderRequest(
                "ETH-USD-PERP", "BUY", D("0.5"), D("100"), client_id="l1", order_type="LIMIT", time_in_force="GTC"
            )
            placed = await venue.place_order(req)
            assert placed.status == "OPEN"
            assert [o.order_id for o in await venue.open_orders()] == [placed.order_id]
            await venue.cancel_order(placed.order_id)
            assert await venue.open_orders() == []
            with pytest.raises(errors.OrderNotFound):
                await venue.cancel_order(placed.order_id)
        finally:
            await venue.close()

    run(go)


def test_auth_before_onboarding_and_bad_signatures_are_refused(sims):
    venue = new_venue(sims)

    async def go():
        try:
            with pytest.raises(errors.AuthError):
                await venue.authenticate()
            await venue.onboard(ETH_ADDRESS)
            await venue.authenticate()
            # an order signed by another key: the venue's verify fails
            venue.signer.key = stark.StarkKey(12345)
            with pytest.raises(errors.AuthError) as exc:
                await venue.place_order(PerpOrderRequest("BTC-USD-PERP", "SELL", D("0.01"), None, client_id="x"))
            assert exc.value.code == "INVALID_SIGNATURE"
        finally:
            await venue.close()

    run(go)


def test_size_beyond_chain_precision_is_refused_before_sending(sims):
    venue = new_venue(sims)
    with pytest.raises(ValueError, match="8 decimals"):
        venue.signer.sign_order("BTC-USD-PERP", "BUY", "MARKET", D("0.000000001"), None)


def test_reject_fault_maps_to_invalid_order(sims):
    venue = new_venue(sims)

    async def go():
        try:
            await venue.onboard(ETH_ADDRESS)
            sims.call(setattr, sims.paradex.faults, "reject_next_order", True)
            with pytest.raises(errors.InvalidOrder):
                await venue.place_order(PerpOrderRequest("BTC-USD-PERP", "BUY", D("0.01"), None, client_id="r"))
        finally:
            await venue.close()

    run(go)


def test_book_feed_applies_deltas_and_resyncs_on_a_gap(sims):
    venue = new_venue(sims)

    async def go():
        feed = await venue.connect_book("BTC-USD-PERP")
        try:
            book = await feed.wait_ready(5)
            first_seq = book.seq
            await asyncio.sleep(0.3)
            assert book.seq > first_seq  # deltas applied in sequence
            assert book.vwap("BUY", D("0.1")) > book.vwap("SELL", D("0.1"))
            sims.call(setattr, sims.paradex.faults, "gap_next_book", True)
            for _ in range(100):
                if feed.resyncs:
                    break
                await asyncio.sleep(0.05)
            assert feed.resyncs == 1
            book = await feed.wait_ready(5)
            assert book.valid
        finally:
            await feed.stop()
            await venue.close()

    run(go)


def test_correlated_prices_across_venues(sims):
    vest_mid = sims.call(sims.vest.ledger.market.mid, "vest", "BTC")
    paradex_mid = sims.call(sims.paradex.ledger.market.mid, "paradex", "BTC")
    assert abs(vest_mid - paradex_mid) / vest_mid < D("0.002")
    sims.call(sims.paradex.ledger.market.inject_spread, "paradex", 50, 0.5)
    spread = sims.call(sims.paradex.ledger.market.mid, "paradex", "BTC") - sims.call(
        sims.vest.ledger.market.mid, "vest", "BTC"
    )
    assert spread / vest_mid > D("0.003")
