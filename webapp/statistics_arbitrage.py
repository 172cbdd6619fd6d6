"""The Statistics page's Arbitrage section, for admins only (the engine trades the operator's own venue accounts:
for traders it does not exist): per pair, its intents, fees, funding, net P&L, the entry and exit spreads captured
and the P&L realised since inception, from the engine's stored history (core/arb_history.py)."""

from __future__ import annotations

from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from core.arb_history import PairSummary, pair_summaries
from core.infra.db import new_session


def arbitrage_summaries() -> list[PairSummary] | None:
    """The pairs' summaries for an admin (empty when the engine never traded), None for anyone else."""
    if not current_user.is_admin:
        return None
    try:
        with new_session() as session:
            return pair_summaries(session)
    except SQLAlchemyError:
        return []
