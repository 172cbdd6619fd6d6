"""Arbitrage page: the status the `arb` process publishes to Redis, plus its recent intents, the P&L realised
since inception and the admins' actions from Postgres; the admins' controls (pause, resume, dry run, kill switch
reset, flatten).

The page never talks to the engine: it reads what the process wrote (live every second via HTMX), and a control
is recorded under its admin and queued on Redis for the engine (core/arb_commands.py), which answers on the row.
The engine trades the operator's own venue accounts: only admins see it; for traders it does not exist.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import redis
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from htmx_flask import request
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from core import arb_commands, arb_events
from core.arb_history import realised_since_inception
from core.infra.bus import ARB_STATUS, get_redis
from core.infra.db import new_session
from core.models.arb import ArbIntent
from webapp.numbers import price
from webapp.scoping import admin_required

bp = Blueprint("arbitrage", __name__, url_prefix="/arbitrage")
STALE_AFTER_S = 5.0
AMOUNT_TICK = Decimal("0.0001")  # the engine trades hundredths of a coin: its P&L is shown to 4 places


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
    pair = status.get("pair") if status else None
    context = {"status": status, "problem": problem, "intents": recent_intents(pair), "actions": [], "realised": None}
    try:
        with new_session() as session:
            context["actions"] = arb_commands.recent_actions(session, pair)
            context["realised"] = realised_since_inception(session, pair)
    except SQLAlchemyError:
        pass  # the status still shows; the database's own problem is on the System page
    return context


@bp.get("/")
@admin_required
def index():
    return render_template("arbitrage/index.html", actions_offered=arb_commands.ACTIONS, **_context())


@bp.get("/status")
@admin_required
def status():
    return render_template("arbitrage/_status.html", **_context())


@bp.post("/control")
@admin_required
def control():
    """Record an admin's control and queue it for the engine. A plain form post answers with its status code (400
    unknown action, 409 no running engine, 503 Redis or the database away) or a redirect; an HTMX one with the
    message to show (htmx swaps no error answer)."""
    action = request.form.get("action", "")
    if action not in arb_commands.ACTIONS:
        return _answer(f"Unknown action {action[:40]!r}: nothing was queued.", 400)
    status, problem = read_status()
    if status is None or problem is not None or status.get("state") == "stopped":
        return _answer(f"{problem or 'The engine is stopped.'} Nothing was queued.", 409)
    try:
        with new_session() as session:
            action_id = arb_commands.request(
                session, get_redis(), action, str(status.get("pair")), current_user.id, current_user.username
            )
    except ValueError as exc:
        return _answer(f"{exc}: nothing was queued.", 400)
    except (redis.RedisError, SQLAlchemyError):
        return _answer("Redis or the database did not answer: nothing was queued. Try again.", 503)
    return _answer(f"{arb_commands.ACTIONS[action]}: queued (action #{action_id}); the engine answers below.", 200)


def _answer(message: str, code: int):
    if request.htmx:
        return render_template("arbitrage/_control_result.html", message=message, ok=code == 200)
    if code != 200:
        abort(code, message)
    flash(message, "success")
    return redirect(url_for("arbitrage.index"))


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


@bp.app_template_filter("arb_amount")
def arb_amount(value: Decimal | None) -> str:
    return price(value, AMOUNT_TICK)
