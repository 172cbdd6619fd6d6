"""Traders, simulator connections and standing orders for the benches, created on the first run and
reused by every later one: a bench run must not leave the install with more connections to reconcile
than it found (each one costs the venue's request budget for as long as it has recent orders)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal

import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import accounts, brokers
from core.infra.db import session_scope, utcnow
from core.infra.security import register_secret
from core.models import BrokerConnection, Order, User
from core.orders import placement
from core.orders.submit import OrderIntent, record_order

BALANCES = {"USDT": "100000000", "BTC": "1000"}
SYMBOL = "BTCUSDT"
RESTING_PRICE = Decimal("1000")  # a buy this far below the market rests (0.01 of it: above min notional)


def bench_user(session: Session, username: str) -> User:
    return accounts.find_user(session, username) or accounts.create_user(
        session, username, accounts.generate_password(), within_limits=False
    )


def sim_connection(session: Session, user_id: int, label: str, sim_url: str) -> BrokerConnection:
    """The user's simulator connection called `label`, created on first use. Its simulator account is
    declared again every time (idempotent), so a restarted simulator knows it again."""
    broker = session.scalar(
        select(BrokerConnection).where(BrokerConnection.user_id == user_id, BrokerConnection.label == label)
    )
    if broker is None:
        api_key, api_secret = f"bench{secrets.token_hex(6)}", secrets.token_urlsafe(24)
    else:
        creds = broker.credentials()
        api_key, api_secret = creds["api_key"], creds["api_secret"]
    register_secret(api_secret)
    requests.post(
        f"{sim_url.rstrip('/')}/sim/admin/accounts",
        timeout=10,
        json={"api_key": api_key, "api_secret": api_secret, "balances": BALANCES},
    ).raise_for_status()
    if broker is None:
        broker = brokers.create_connection(
            session,
            user_id,
            brokers.ConnectionInput(venue="sim", label=label, api_key=api_key, api_secret=api_secret, base_url=sim_url),
        )
        brokers.load_markets(session, broker)
    return broker


def fresh_sim_connection(
    session: Session, user_id: int, label: str, sim_url: str, balances: dict[str, str]
) -> tuple[BrokerConnection, str]:
    """A new connection of the user on a new simulator account holding exactly `balances` (a bench that
    compares equities or starts its own simulator); returns it and the simulator's account id."""
    api_key, api_secret = f"bench{secrets.token_hex(6)}", secrets.token_urlsafe(24)
    register_secret(api_secret)
    response = requests.post(
        f"{sim_url.rstrip('/')}/sim/admin/accounts",
        timeout=30,
        json={"api_key": api_key, "api_secret": api_secret, "balances": balances},
    )
    response.raise_for_status()
    broker = brokers.create_connection(
        session,
        user_id,
        brokers.ConnectionInput(venue="sim", label=label, api_key=api_key, api_secret=api_secret, base_url=sim_url),
    )
    brokers.load_markets(session, broker)
    return broker, response.json()["account_id"]


def standing_orders(broker_ids: list[int], *, resting: bool, age: timedelta) -> None:
    """Give each connection that has none a filled market order and, when `resting`, a buy limit that
    rests at the venue; then age their last change by `age` (history, not activity)."""
    placed = []
    with session_scope() as session:
        have = set(session.scalars(select(Order.broker_id).where(Order.broker_id.in_(broker_ids)).distinct()))
        for broker_id in set(broker_ids) - have:
            user_id = session.get(BrokerConnection, broker_id).user_id
            placed.append(
                record_order(
                    session,
                    user_id,
                    OrderIntent(
                        broker_id=broker_id, symbol=SYMBOL, side="buy", type="market", quantity=Decimal("0.001")
                    ),
                ).id
            )
            if resting:
                placed.append(
                    record_order(
                        session,
                        user_id,
                        OrderIntent(
                            broker_id=broker_id,
                            symbol=SYMBOL,
                            side="buy",
                            type="limit",
                            quantity=Decimal("0.01"),
                            price=RESTING_PRICE,
                        ),
                    ).id
                )
    for order_id in placed:
        placement.place(order_id)
    if placed:
        with session_scope() as session:
            session.execute(
                update(Order).where(Order.id.in_(placed)).values(created_at=utcnow() - age, updated_at=utcnow() - age)
            )
