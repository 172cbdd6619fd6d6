"""Paper trading: every user's funded account on the simulator, one click away, and starting it over.

A paper account is an ordinary broker connection (venue "sim", keys generated here and stored
encrypted like any other) labelled "Simulator". Starting over never deletes history: the current
connection is renamed with the date it ended and keeps its orders and fills, and a fresh one is
opened with the starting balance.
"""

from __future__ import annotations

import logging
import secrets

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.brokers import BrokerError, base_url_for, check_connection, load_markets
from core.exchanges.errors import ExchangeError
from core.infra.config import Settings, get_settings
from core.infra.db import utcnow
from core.infra.security import register_secret
from core.models import Bot, BrokerConnection, Order, User, Webhook
from core.orders.states import FINAL_STATES

log = logging.getLogger(__name__)

PAPER_LABEL = "Simulator"


def paper_account(session: Session, user_id: int) -> BrokerConnection | None:
    return session.scalar(
        select(BrokerConnection).where(BrokerConnection.user_id == user_id, BrokerConnection.label == PAPER_LABEL)
    )


def ensure_paper_account(user: User | int, settings: Settings | None = None, session: Session | None = None) -> int:
    """Give `user` a funded account on the running simulator and a "Simulator" connection to it.

    Idempotent: an existing "Simulator" connection is kept (and its sim account re-provisioned only
    if the simulator lost it). Returns the connection id. Raises requests.RequestException when the
    simulator is not reachable, BrokerError when it refuses the account.
    """
    from core.infra.db import session_scope

    settings = settings or get_settings()
    user_id = user if isinstance(user, int) else user.id
    if session is None:
        with session_scope() as own:
            return ensure_paper_account(user_id, settings, own)
    broker = paper_account(session, user_id)
    if broker is None:
        api_key, api_secret = f"demo{user_id}x{secrets.token_hex(8)}", secrets.token_urlsafe(24)
        broker = BrokerConnection(user_id=user_id, venue="sim", label=PAPER_LABEL, testnet=False)
        broker.set_credentials(api_key, api_secret)
        session.add(broker)
        session.flush()
        _provision_sim_account(settings.sim_url, api_key, api_secret, settings.file.sim.demo_balance_usdt)
        log.info("paper_account_created", extra={"user_id": user_id, "broker_id": broker.id})
    else:
        creds = broker.credentials()
        if not check_connection(broker).ok:
            _provision_sim_account(
                base_url_for(broker, settings) or settings.sim_url,
                creds["api_key"],
                creds["api_secret"],
                settings.file.sim.demo_balance_usdt,
            )
    try:
        load_markets(session, broker)
    except ExchangeError as err:
        log.warning("paper_markets_not_loaded", extra={"broker_id": broker.id, "error": str(err)})
    return broker.id


def start_over(session: Session, user_id: int, settings: Settings | None = None) -> int:
    """Close the user's paper account (kept, renamed with today's date) and open a fresh funded one.

    Refused while anything still trades on it: open orders, running bots, active webhooks; the
    message names what to stop first. Returns the new connection's id."""
    broker = paper_account(session, user_id)
    if broker is None:
        raise BrokerError("you have no paper account to start over; create one first")
    blockers = _still_trading(session, broker.id)
    if blockers:
        raise BrokerError(f"the paper account still trades: {'; '.join(blockers)}. Stop them first, then start over.")
    broker.label = _archived_label(session, user_id)
    session.flush()
    log.info("paper_account_archived", extra={"user_id": user_id, "broker_id": broker.id})
    return ensure_paper_account(user_id, settings, session)


def _still_trading(session: Session, broker_id: int) -> list[str]:
    unfinished = Order.state.not_in([state.value for state in FINAL_STATES])
    open_orders = session.scalar(select(Order.id).where(Order.broker_id == broker_id, unfinished).limit(1))
    bots = list(session.scalars(select(Bot.name).where(Bot.broker_id == broker_id, Bot.state == "running")))
    webhooks = list(session.scalars(select(Webhook.name).where(Webhook.broker_id == broker_id, ~Webhook.paused)))
    blockers = []
    if open_orders:
        blockers.append("open orders (cancel them, or use Flatten)")
    if bots:
        blockers.append(f"running bots {', '.join(sorted(bots))} (pause them)")
    if webhooks:
        blockers.append(f"active webhooks {', '.join(sorted(webhooks))} (pause them)")
    return blockers


def _archived_label(session: Session, user_id: int) -> str:
    base = f"{PAPER_LABEL} until {utcnow():%Y-%m-%d %H:%M}"
    taken = set(
        session.scalars(
            select(BrokerConnection.label).where(
                BrokerConnection.user_id == user_id, BrokerConnection.label.startswith(base)
            )
        )
    )
    label, n = base, 1
    while label in taken:
        n += 1
        label = f"{base} ({n})"
    return label


def _provision_sim_account(sim_url: str, api_key: str, api_secret: str, usdt: str) -> None:
    register_secret(api_secret)
    response = requests.post(
        f"{sim_url}/sim/admin/accounts",
        timeout=10,
        json={"api_key": api_key, "api_secret": api_secret, "balances": {"USDT": usdt}},
    )
    if response.status_code != 200:
        raise BrokerError(f"the simulator refused the paper account: HTTP {response.status_code} {response.text[:200]}")
