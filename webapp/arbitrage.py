"""Arbitrage page: the status the `arb` process publishes to Redis, plus its recent intents from Postgres.

The page never talks to the engine: it reads what the process wrote (live every second via HTMX).
The engine trades the operator's own venue accounts: only admins see it; for traders it does not exist.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import redis
from flask import Blueprint, render_template
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from core import arb_events
from core.infra.bus import ARB_STATUS, get_redis
from core.infra.db import new_session
from core.models.arb import ArbIntent
from webapp.scoping import admin_required

bp = Blueprint("arbitrage", __name__, url_prefix="/arbitrage")
STALE_AFTER_S = 5.0


def read_status() -> tuple[dict | None, str | None]:
    """(status, problem): the last published status, or why there is none to show."""
    try:
        raw = get_redis().get(ARB_STATUS)
    except redis.RedisError as exc:
        return None, f"Redis unreachable: {exc}"
    if raw is None:
        return None, "The arb process is not running (no status published in the last 15 s)."
    try:
        status = json.loads(raw)
    except ValueError:
        return None, "The published status is not valid JSON."
    age = time.time() - float(status.get("ts", 0))
    status["age_s"] = round(age, 1)
    if age > STALE_AFTER_S and status.get("state") != "stopped":
        return status, f"Status is {age:.0f} s old: the arb process may be stuck."
    return status, None


def recent_intents(pair: str | None, limit: int = 15) -> list[ArbIntent]:
    query = select(ArbIntent).order_by(ArbIntent.id.desc()).limit(limit)
    if pair:
        query = query.where(ArbIntent.pair == pair)
    try:
        with new_session() as session:
            return list(session.scalars(query).all())
    except SQLAlchemyError:
        return []


def _context() -> dict:
    status, problem = read_status()
    return {"status": status, "problem": problem, "intents": recent_intents(status.get("pair") if status else None)}


@bp.get("/")
@admin_required
def index():
    return render_template("arbitrage/index.html", **_context())


@bp.get("/status")
@admin_required
def status():
    return render_template("arbitrage/_status.html", **_context())


@bp.app_template_filter("arb_time")
def arb_time(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}"


@bp.app_template_filter("arb_iso")
def arb_iso(epoch: float) -> str:
    """The instant for the browser, which shows it in the trader's own time zone (static/js/ui.js)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


@bp.app_template_filter("arb_sentence")
def arb_sentence(event: dict) -> str:
    return arb_events.describe(event.get("event", ""), {k: v for k, v in event.items() if k not in ("time", "event")})
