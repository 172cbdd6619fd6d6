"""Arbitrage page: every pair the `arb` process trades (a row each: state, position, P&L, controls) and the detail
of one (`?pair=`, default the first): its published status, recent intents, the P&L realised since inception and
the admins' actions from Postgres; the admins' controls (pause, resume, dry run, kill switch reset, flatten), each
naming its pair.

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
from core.infra.bus import ARB_PAIRS, arb_status_key, get_redis
from core.infra.db import new_session
from core.models.arb import ArbIntent
from webapp.numbers import price
from webapp.scoping import admin_required

bp = Blueprint("arbitrage", __name__, url_prefix="/arbitrage")
STALE_AFTER_S = 5.0
AMOUNT_TICK = Decimal("0.0001")  # the engine trades hundredths of a coin: its P&L is shown to 4 places


def read_statuses() -> tuple[list[dict], str | None]:
    """(statuses, problem): each pair's last published status in the engine's order, or why there is none."""
    try:
        client = get_redis()
        raw_pairs = client.get(ARB_PAIRS)
        pairs = json.loads(raw_pairs) if raw_pairs is not None else []
        if not isinstance(pairs, list) or not all(isinstance(p, str) and arb_commands.PAIR.match(p) for p in pairs):
            return [], "The published list of pairs is not valid."
        raws = client.mget([arb_status_key(pair) for pair in pairs]) if pairs else []
    except redis.RedisError as exc:
        return [], f"Redis unreachable: {exc}"
    except ValueError:
        return [], "The published list of pairs is not valid JSON."
    if not any(raw is not None for raw in raws):
        return [], "The arb process is not running (no status published in the last 15 s)."
    statuses, problems = [], []
    for pair, raw in zip(pairs, raws, strict=True):
        try:
            status = json.loads(raw) if raw is not None else None
        except ValueError:
            status = None
        if not isinstance(status, dict):
            problems.append(f"The status of {pair} is {'missing' if raw is None else 'not valid JSON'}.")
            continue
        age = time.time() - float(status.get("ts", 0))
        status["age_s"] = round(age, 1)
        if age > STALE_AFTER_S and status.get("state") != "stopped":
            problems.append(f"The status of {pair} is {age:.0f} s old: the arb process may be stuck.")
        statuses.append(status)
    return statuses, " ".join(problems) or None


def pick(statuses: list[dict], wanted: str | None) -> tuple[dict | None, str | None]:
    """The status of the pair asked for (default the first), or the first and why the one asked for is not shown."""
    first = statuses[0] if statuses else None
    if not wanted:
        return first, None
    chosen = next((s for s in statuses if s.get("pair") == wanted), None)
    if chosen is None:
        return first, f"The engine has no pair {wanted[:64]!r}: showing {first['pair'] if first else 'none'}."
    return chosen, None


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
    statuses, problem = read_statuses()
    status, not_found = pick(statuses, request.args.get("pair"))
    problem = " ".join(p for p in (problem, not_found) if p) or None
    pair = status.get("pair") if status else None
    context = {
        "statuses": statuses,
        "status": status,
        "problem": problem,
        "intents": recent_intents(pair),
        "actions": [],
        "realised": None,
    }
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
    return render_template("arbitrage/_status.html", actions_offered=arb_commands.ACTIONS, **_context())


@bp.post("/control")
@admin_required
def control():
    """Record an admin's control of one pair and queue it for the engine. A plain form post answers with its status
    code (400 unknown action or pair, 409 no running engine, 503 Redis or the database away) or a redirect; an HTMX
    one with the message to show (htmx swaps no error answer). Without `pair`, an engine of one pair means it."""
    action = request.form.get("action", "")
    if action not in arb_commands.ACTIONS:
        return _answer(f"Unknown action {action[:40]!r}: nothing was queued.", 400)
    statuses, problem = read_statuses()
    pairs = [str(s.get("pair")) for s in statuses]
    wanted = request.form.get("pair") or (pairs[0] if len(pairs) == 1 else "")
    if statuses and wanted not in pairs:
        which = f"Unknown pair {wanted[:64]!r}" if wanted else "Which pair?"
        return _answer(f"{which} (the engine trades {', '.join(pairs)}): nothing was queued.", 400)
    status = next((s for s in statuses if s.get("pair") == wanted), None)
    if status is None or status.get("state") == "stopped" or status["age_s"] > STALE_AFTER_S:
        why = problem if status is None else "The engine is stopped." if status.get("state") == "stopped" else ""
        why = why or f"The status of {wanted} is {status['age_s']:.0f} s old: the arb process may be stuck."  # type: ignore[index]
        return _answer(f"{why} Nothing was queued.", 409)
    try:
        with new_session() as session:
            action_id = arb_commands.request(
                session, get_redis(), action, wanted, current_user.id, current_user.username
            )
    except ValueError as exc:
        return _answer(f"{exc}: nothing was queued.", 400)
    except (redis.RedisError, SQLAlchemyError):
        return _answer("Redis or the database did not answer: nothing was queued. Try again.", 503)
    return _answer(
        f"{arb_commands.ACTIONS[action]} {wanted}: queued (action #{action_id}); the engine answers below.", 200
    )


def _answer(message: str, code: int):
    if request.htmx:
        return render_template("arbitrage/_control_result.html", message=message, ok=code == 200)
    if code != 200:
        abort(code, message)
    flash(message, "success")
    pair = request.form.get("pair", "")
    return redirect(
        url_for("arbitrage.index", pair=pair) if arb_commands.PAIR.match(pair) else url_for("arbitrage.index")
    )


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
