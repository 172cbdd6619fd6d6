"""VestVenue against the Vest simulator face over real loopback HTTP/WS, signatures verified."""

import asyncio
from decimal import Decimal as D

import pytest
from eth_account import Account

from core.exchanges import errors
from core.exchanges.perp import vest
from core.exchanges.perp.venue import PerpOrderRequest


def registered_venue(sims, **kwargs) -> vest.VestVenue:
    primary, signing = Account.create(), Account.create()

    async def register() -> str:
        http = vest.JsonHttp(sims.vest_rest, "vest")
        body = vest.registration_body(primary.key, signing.address, 1_900_000_000_000, vest.DEV_ROUTER)
        status, reply = await http.request("POST", "/register", body=body)
        await http.close()
        assert status == 200, reply
        return reply["apiKey"]

    api_key = asyncio.run(register())
    return vest.VestVenue(
        rest_url=sims.vest_rest, ws_url=sims.vest_ws, api_key=api_key, signing_key=signing.key.hex(), **kwargs
    )


def run(coro_fn):
    return asyncio.run(coro_fn())


def test_register_place_fill_position_and_account(sims):
    venue = registered_venue(sims)

    async def go():
        try:
            req = PerpOrderRequest("BTC-PERP", "BUY", D("0.01"), D("70000"), client_id="x1")
            placed = await venue.place_order(req)
            assert placed.order_id.startswith("0x")
            filled = await venue.get_order(placed.order_id)
            assert filled.status == "FILLED" and filled.filled_size == D("0.01")
            assert D(50000) < filled.avg_price < D(70000)
            (position,) = await venue.positions()
            assert position.market == "BTC-PERP" and position.size == D("0.01")
            assert (await venue.account()).equity > 0
            # worst price below the book: nothing fills, the venue cancels the remainder
            far = await venue.place_order(PerpOrderRequest("BTC-PERP", "BUY", D("0.01"), D("1000"), client_id="x2"))
            assert (await venue.get_order(far.order_id)).status == "CANCELLED"
        finally:
            await venue.close()

    run(go)


def test_registration_with_a_wrong_primary_signature_is_refused(sims):
    primary, signing, other = Account.create(), Account.create(), Account.create()

    async def go():
        http = vest.JsonHttp(sims.vest_rest, "vest")
        body = vest.registration_body(primary.key, signing.address, 1_900_000_000_000, vest.DEV_ROUTER)
        body["primaryAddr"] = other.address.lower()
        status, reply = await http.request("POST", "/register", body=body)
        await http.close()
        assert status == 400 and reply["code"] == 1022

    run(go)


def test_order_signed_by_another_key_is_an_auth_error(sims):
    venue = registered_venue(sims)
    venue._signing_key = vest.signing_key_from(Account.create().key.hex())  # not the registered signer

    async def go():
        with pytest.raises(errors.AuthError) as exc:
            await venue.place_order(PerpOrderRequest("BTC-PERP", "BUY", D("0.01"), D("70000"), client_id="c"))
        assert exc.value.code == 1022
        await venue.close()

    run(go)


def test_reused_nonce_and_expired_time_are_rejected(sims):
    venue = registered_venue(sims)

    async def go():
        try:
            await venue.place_order(PerpOrderRequest("BTC-PERP", "BUY", D("0.01"), D("70000"), client_id="5"))
            with pytest.raises(errors.InvalidOrder) as exc:
                await venue.place_order(PerpOrderRequest("BTC-PERP", "BUY", D("0.01"), D("70000"), client_id="5"))
            assert exc.value.code == 1023
            venue._clock_ms = lambda: 1_000  # far in the past
            with pytest.raises(errors.InvalidOrder) as exc:
                await venue.place_order(PerpOrderRequest("BTC-PERP", "BUY", D("0.01"), D("70000"), client_id="9"))
            assert exc.value.code == 1132
        finally:
            await venue.close()

    run(go)


def test_fault_injection_reject_and_lost_response(sims):
    venue = registered_venue(sims)
    venue._http.timeout = vest.JsonHttp(sims.vest_rest, "vest", timeout=0.5).timeout

    async def go():
        try:
            sims.call(setattr, sims.vest.faults, "reject_next_order", True)
            with pytest.raises(errors.InvalidOrder):
                await venue.place_order(PerpOrderRequest("BTC-PERP", "SELL", D("0.01"), D("1"), client_id="r"))
            sims.call(setattr, sims.vest.faults, "lose_next_response", True)
            with pytest.raises(errors.Unavailable):
                await venue.place_order(PerpOrderRequest("BTC-PERP", "SELL", D("0.01"), D("1"), client_id="l"))
            # the lost order was executed anyway: the position shows it
            assert any(p.size < 0 for p in await venue.positions())
        finally:
            await venue.close()

    run(go)


def test_book_feed_gets_snapshots_and_resyncs_after_drop(sims):
    venue = registered_venue(sims)

    async def go():
        updates = []
        feed = await venue.connect_book("BTC-PERP", lambda book: updates.append(book.best_bid().price))
        try:
            book = await feed.wait_ready(5)
            assert book.vwap("BUY", D("0.01")) > book.vwap("SELL", D("0.01"))
            sims.call(setattr, sims.vest.faults, "drop_ws", True)
            for _ in range(100):
                if feed.resyncs:
                    break
                await asyncio.sleep(0.05)
            assert feed.resyncs >= 1
            await feed.wait_ready(5)
            assert feed.book.valid and len(updates) >= 2
        finally:
            await feed.stop()
            await venue.close()

    run(go)
