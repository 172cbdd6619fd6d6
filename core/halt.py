"""The administrator's global trading halt: while on, no new order leaves for any venue, whatever its
source (manual, bot, webhook, flatten); cancels, syncs and reconciliation go on.

The switch lives in Postgres (durable across restarts). The order pipeline reads it in the same
transaction that moves an order from `new` to `sent`, so an order is either sent before the switch
was committed (it is in flight and completes or is cancelled) or it ends `rejected` with HALTED.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.infra.db import new_session, utcnow
from core.models import SystemSwitch

log = logging.getLogger(__name__)

TRADING_HALT = "trading_halt"
HALTED = "trading is halted by the administrator"


def trading_halted(session: Session) -> bool:
    switch = session.get(SystemSwitch, TRADING_HALT)
    return bool(switch and switch.enabled)


def set_trading_halted(session: Session, halted: bool, admin_id: int | None = None) -> None:
    switch = session.get(SystemSwitch, TRADING_HALT, with_for_update=True)
    if switch is None:
        switch = SystemSwitch(name=TRADING_HALT)
        session.add(switch)
    switch.enabled, switch.changed_by_id, switch.changed_at = halted, admin_id, utcnow()
    session.flush()
    log.warning("trading_halt_on" if halted else "trading_halt_off", extra={"user_id": admin_id})


def halted_now(unknown: bool) -> bool:
    """For processes that poll the switch (the arbitrage engine): `unknown` when the database is out of reach."""
    try:
        with new_session() as session:
            session.execute(text("set local statement_timeout = 2000"))  # a locked table must not stall the caller
            return trading_halted(session)
    except SQLAlchemyError:
        return unknown
