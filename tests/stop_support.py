"""Shared by the stop-everything tests: a trader whose bot and webhook hold positions bought through the
real order pipeline on the simulator, plus a resting limit order, and a second broker that can fail."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import select

from core import brokers
from core.halt import set_trading_halted
from core.infra.db import new_session, session_scope
from core.ledger.positions import bot_position, net_position
from core.models import Order, Webhook, WebhookAlert
from core.orders import placement
from core.webhooks.protection import record_protection
from core.webhooks.setup import WebhookSettings, create_webhook
from tests.support import remember_secret
from tests.trading_support import Trader, make_trader

DEAD_URL = "http://127.0.0.1:9"  # nothing listens there: every call fails at once


@dataclass
class Desk:
    """What a trader left running: a bot and a webhook holding BTC, an order resting at the venue."""

    trader: Trader
    bot_id: int
    webhook_id: int
    webhook_token: str
    resting_order_id: int


def bought(trader: Trader, quantity: str = "0.01", **fields) -> int:
    order_id = trader.order(quantity=Decimal(quantity), **fields)
    assert placement.place(order_id).state == "filled"
    return order_id


def accepted_buy_alert(trader: Trader) -> tuple[int, str, int]:
    """A new webhook of the trader (0.01 BTCUSDT a signal) and one buy alert it accepted:
    (webhook id, token, alert id)."""
    with session_scope() as session:
        webhook, token = create_webhook(
            session,
            trader.user_id,
            WebhookSettings(
                name=f"tv-{secrets.token_hex(3)}",
                broker_id=trader.broker_id,
                size_mode="quantity",
                size_value=Decimal("0.01"),
                symbol="BTCUSDT",
            ),
        )
        alert = WebhookAlert(
            webhook_id=webhook.id,
            status="accepted",
            http_status=202,
            action="buy",
            symbol="BTCUSDT",
            payload={"action": "buy", "symbol": "BTCUSDT"},
        )
        session.add(alert)
        session.flush()
        return webhook.id, token, alert.id


def protected_entry(trader: Trader, stop_loss: str = "1000") -> tuple[int, int]:
    """A webhook's filled buy and its stop-loss resting at the venue: (webhook id, stop order id)."""
    webhook_id, _token, alert_id = accepted_buy_alert(trader)
    with session_scope() as session:
        alert = session.get(WebhookAlert, alert_id)
        alert.payload = {**alert.payload, "stop_loss": stop_loss}
    entry_id = bought(trader, "0.01", source="webhook", source_ref=str(alert_id))
    with session_scope() as session:
        stop_id = record_protection(session, entry_id)[0].id
    assert placement.place(stop_id).state == "open"
    return webhook_id, stop_id


@contextmanager
def trading_halt() -> Iterator[None]:
    """The administrator's halt, on for the block and off again whatever happens: it is global, so a test
    that left it on would fail every later test that trades."""
    with session_scope() as session:
        set_trading_halted(session, True)
    try:
        yield
    finally:
        with session_scope() as session:
            set_trading_halted(session, False)


def make_desk(trader: Trader, make_bot) -> Desk:
    bot_id = make_bot(trader)
    bought(trader, "0.02", source="bot", source_ref=str(bot_id))
    webhook_id, token, alert_id = accepted_buy_alert(trader)
    bought(trader, "0.01", source="webhook", source_ref=str(alert_id))
    resting = trader.order(type="limit", price=Decimal("1000"), quantity=Decimal("0.01"), time_in_force="GTC")
    assert placement.place(resting).state == "open"
    return Desk(trader, bot_id, webhook_id, token, resting)


def positions(desk: Desk) -> tuple[Decimal, Decimal]:
    """(the bot's BTC, the webhook's BTC) from our fills ledger."""
    with new_session() as session:
        webhook = session.get(Webhook, desk.webhook_id)
        return (
            bot_position(session, desk.bot_id, "BTCUSDT").quantity,
            net_position(session, webhook, "BTCUSDT"),
        )


def second_broker(trader: Trader, label: str = "Second") -> int:
    """Another broker connection of the same trader, on its own simulator account."""
    key, secret = remember_secret(f"k{secrets.token_hex(8)}"), remember_secret(f"s-{secrets.token_urlsafe(18)}")
    trader.sim.create_account(key, secret, {"USDT": "100000", "BTC": "1"})
    with session_scope() as session:
        broker = brokers.create_connection(
            session,
            trader.user_id,
            brokers.ConnectionInput(venue="sim", label=label, api_key=key, api_secret=secret, base_url=trader.sim.url),
        )
        brokers.load_markets(session, broker)
        return broker.id


def order_state(order_id: int) -> str:
    with new_session() as session:
        return session.scalar(select(Order.state).where(Order.id == order_id))


@pytest.fixture()
def signed_in_trader(app, make_user, sim, login, redis_client):
    """A funded trader on the simulator, signed in on their own test client."""
    creds = {}

    def recording(*args, **kwargs):
        user, password = make_user(*args, **kwargs)
        creds["login"] = (user.username, password)
        return user, password

    trader = make_trader(recording, sim)
    client = app.test_client()
    assert login(*creds["login"], test_client=client).status_code == 302
    return trader, client


def wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return result


def flatten_report(client) -> str:
    """The report of the flatten a worker is running, once it is done (as the page's polling sees it)."""

    def finished():
        text = client.get("/stop/flatten/report/status").get_data(as_text=True)
        return text if "under way" not in text else None

    return wait_for(finished, timeout=60)
