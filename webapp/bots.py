"""Bots: list, create, start/pause/resume/delete, each bot's decisions, orders, position and P&L, and the backtest
of its live period beside its live trades."""

from __future__ import annotations

import contextlib
import json
import time

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from werkzeug.exceptions import NotFound
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange

from core import tasks, venue_exits
from core.backtest.run_lifecycle import enqueue_run
from core.bots import live_backtest, manage
from core.bots.source import source_status
from core.brokers import list_connections, symbols_of
from core.candles.sources import heartbeat
from core.exchanges.spot.registry import VENUES
from core.infra.bus import bot_close_pending, get_redis, task_sender
from core.infra.config import TIMEFRAMES
from core.infra.db import new_session, session_scope
from core.ledger.positions import bot_position
from core.models import BacktestRun, Bot
from core.strategies.contract import format_candle_time
from webapp.scoping import owned_or_404

bp = Blueprint("bots", __name__, url_prefix="/bots")


class BotForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=manage.MAX_NAME_CHARS)])
    strategy_version_id = SelectField("Strategy version (pinned)", coerce=int)
    broker_id = SelectField("Broker", coerce=int)
    symbol = StringField("Symbol", default="BTCUSDT", validators=[DataRequired(), Length(max=32)])
    timeframe = SelectField("Timeframe (decides at each close)", choices=list(TIMEFRAMES), default="1h")
    params = TextAreaField("Parameters (JSON, empty: the version's)", validators=[Length(max=4000)])
    candles_needed = IntegerField("Candles per decision", default=500, validators=[NumberRange(*manage.CANDLES_RANGE)])
    timeout_seconds = IntegerField(
        "Decision timeout (seconds)", default=10, validators=[NumberRange(*manage.TIMEOUT_RANGE)]
    )
    source_venue = SelectField("Signal source venue (empty: the heartbeat's)", default="")
    source_symbol = StringField("Signal source symbol (empty: the same asset)", validators=[Length(max=32)])
    start_now = BooleanField("Start now", default=False)

    def settings(self) -> manage.BotSettings:
        return manage.BotSettings(
            name=self.name.data,
            strategy_version_id=self.strategy_version_id.data,
            broker_id=self.broker_id.data,
            symbol=self.symbol.data,
            timeframe=self.timeframe.data,
            params=manage.parse_params(self.params.data),
            candles_needed=self.candles_needed.data,
            timeout_seconds=self.timeout_seconds.data,
            source_venue=self.source_venue.data or "",
            source_symbol=self.source_symbol.data or "",
        )


def _form(session, **prefill) -> tuple[BotForm, list[str]]:
    form = BotForm(**prefill)
    form.strategy_version_id.choices = manage.version_choices(session, current_user.id)
    brokers = list_connections(session, current_user.id)
    form.broker_id.choices = [(broker.id, f"{broker.label} ({broker.venue})") for broker in brokers]
    form.source_venue.choices = [("", f"heartbeat ({heartbeat().venue})")] + [(v, v) for v in sorted(VENUES)]
    symbols = sorted({symbol for broker in brokers for symbol in symbols_of(session, broker.id)})
    return form, symbols


@bp.route("/", methods=["GET", "POST"])
@login_required
def index():
    with new_session() as session:
        form, symbols = _form(session)
        if form.validate_on_submit():
            try:
                bot = manage.create_bot(session, current_user.id, form.settings())
                if form.start_now.data:
                    manage.start_bot(session, bot)
                session.commit()
                flash(
                    f"Bot {bot.name} created"
                    + (" and started." if bot.state == "running" else ": start it when ready."),
                    "success",
                )
                source = source_status(session, bot)
                if source.warning:
                    flash(f"Signal source {source.label}: {source.warning}", "warning")
                return redirect(url_for("bots.detail", bot_id=bot.id))
            except manage.BotError as exc:
                session.rollback()
                form.form_errors.append(str(exc))
        bots = manage.list_bots(session, current_user.id)
        status = 400 if request.method == "POST" else 200
        return render_template(
            "bots/index.html", form=form, bots=bots, symbols=symbols, labels=dict(form.strategy_version_id.choices)
        ), status


def _page_data(session, bot: Bot) -> dict:
    return {
        "bot": bot,
        "summary": manage.bot_summary(session, bot),
        "source": source_status(session, bot),
        "ticks": manage.recent_ticks(session, bot.id),
        "orders": manage.bot_orders(session, bot.id),
        "venue_flags": venue_exits.flags(session, bot_id=bot.id),
        "version_label": dict(manage.version_choices(session, current_user.id)).get(bot.strategy_version_id),
        "history": manage.change_history(session, bot),
    }


@bp.get("/<int:bot_id>")
@login_required
def detail(bot_id: int):
    with new_session() as session:
        bot = owned_or_404(session, Bot, bot_id)
        return render_template("bots/detail.html", **_page_data(session, bot))


def _current_settings(bot: Bot) -> dict:
    """The edit form's starting values: the bot as it is."""
    fields = ("name", "strategy_version_id", "broker_id", "symbol", "timeframe", "candles_needed", "timeout_seconds")
    values = {name: getattr(bot, name) for name in fields}
    return values | {
        "params": json.dumps(bot.params or {}),
        "source_venue": bot.source_venue,
        "source_symbol": bot.source_symbol,
    }


@bp.route("/<int:bot_id>/edit", methods=["GET", "POST"])
@login_required
def edit(bot_id: int):
    """Edit a paused or stopped bot with the create form's fields and checks (core.bots.manage.edit_bot);
    a running bot is paused first."""
    with new_session() as session:
        bot = owned_or_404(session, Bot, bot_id)
        if bot.state == "running":
            flash("Pause the bot before editing it: a running bot keeps the settings it started with.", "error")
            return redirect(url_for("bots.detail", bot_id=bot_id))
        form, symbols = _form(session, **({} if request.method == "POST" else {"data": _current_settings(bot)}))
        if form.validate_on_submit():
            try:
                change = manage.edit_bot(session, current_user.id, bot_id, form.settings())
                session.commit()
            except manage.BotError as exc:
                session.rollback()
                form.form_errors.append(str(exc))
            else:
                if change is None:
                    flash("Nothing changed.", "info")
                else:
                    [line] = manage.change_history(session, bot, limit=1)
                    flash(f"Bot edited: {', '.join(line.changes)}.", "success")
                return redirect(url_for("bots.detail", bot_id=bot_id))
        status = 400 if request.method == "POST" else 200
        return render_template("bots/edit.html", bot=bot, form=form, symbols=symbols), status


@bp.get("/<int:bot_id>/live")
@login_required
def live(bot_id: int):
    """State, error, position, recent decisions and orders, and the actions, for HTMX polling."""
    with new_session() as session:
        bot = owned_or_404(session, Bot, bot_id)
        # The actions follow too (out of band: they sit in the page's header), returning to the bot's page.
        return render_template(
            "bots/_live.html", oob=True, next_path=url_for("bots.detail", bot_id=bot_id), **_page_data(session, bot)
        )


def _change(bot_id: int, change, message: str, after: str | None = None):
    with session_scope() as session:
        bot = owned_or_404(session, Bot, bot_id)
        try:
            change(session, bot)
        except manage.BotError as exc:
            flash(str(exc), "error")
            return redirect(url_for("bots.detail", bot_id=bot_id))
    flash(message, "success")
    back = request.form.get("next", "")
    back = back if back.startswith("/bots") else None  # never an open redirect
    return redirect(after or back or url_for("bots.detail", bot_id=bot_id))


@bp.post("/<int:bot_id>/start")
@login_required
def start(bot_id: int):
    return _change(bot_id, manage.start_bot, "Bot running: it decides at the next candle close.")


@bp.post("/<int:bot_id>/pause")
@login_required
def pause(bot_id: int):
    return _change(bot_id, manage.pause_bot, "Bot paused. Its open orders and position stay at the venue.")


CLOSE_CLAIM_S = 300  # a close lost with its worker stops holding back a new one after this


@bp.post("/<int:bot_id>/close")
@login_required
def close(bot_id: int):
    """Close position, or Pause and close (`pause=1`): the page asked to confirm; an `orders` worker cancels
    the bot's open orders and sells its position at market (core.flatten.close_bot)."""
    pause = request.form.get("pause") == "1"
    with new_session() as session:
        bot = owned_or_404(session, Bot, bot_id)
        held = bot_position(session, bot.id, bot.symbol).quantity
    if held <= 0:
        if pause:
            return _change(bot_id, manage.pause_bot, "Bot paused. It held no position: nothing to close.")
        flash("The bot holds no position: nothing to close.", "error")
        return redirect(url_for("bots.detail", bot_id=bot_id))
    try:
        if not get_redis().set(bot_close_pending(bot_id), "1", nx=True, ex=CLOSE_CLAIM_S):
            flash("A close of this bot is already under way: nothing was sent again.", "error")
            return redirect(url_for("bots.detail", bot_id=bot_id))
        tasks.send_close_bot(current_user.id, bot_id, pause)
    except Exception:  # noqa: BLE001 - redis/kombu transport errors: nothing was started
        with contextlib.suppress(Exception):  # Redis itself may be what failed
            get_redis().delete(bot_close_pending(bot_id))
        flash("The close could not be handed to the workers (the queue is unreachable); nothing was sent.", "error")
        return redirect(url_for("bots.detail", bot_id=bot_id))
    what = "Pausing the bot and closing" if pause else "Closing"
    flash(f"{what} its position: its open orders are cancelled, then it sells at market. The orders show below.")
    return redirect(url_for("bots.detail", bot_id=bot_id))


@bp.post("/<int:bot_id>/delete")
@login_required
def delete(bot_id: int):
    return _change(
        bot_id, manage.delete_bot, "Bot deleted. Its orders stay in the trading history.", after=url_for("bots.index")
    )


@bp.post("/<int:bot_id>/backtest")
@login_required
def backtest_live_period(bot_id: int):
    """Backtest this bot over its live period: queue the run, then show it beside the live trades."""
    with session_scope() as session:
        bot = owned_or_404(session, Bot, bot_id)
        try:
            run_id = live_backtest.start(session, current_user.id, bot, int(time.time() * 1000)).id
        except live_backtest.LiveBacktestError as exc:
            session.rollback()
            flash(f"Cannot backtest this bot's live period: {exc}", "error")
            return redirect(url_for("bots.detail", bot_id=bot_id))
    if enqueue_run(task_sender(), run_id) is None:
        flash("The task queue is unreachable: the backtest was not started. Try again in a moment.", "error")
    return redirect(url_for("bots.live_period", bot_id=bot_id, run_id=run_id))


@bp.get("/<int:bot_id>/backtest/<int:run_id>")
@login_required
def live_period(bot_id: int, run_id: int):
    """The backtest of the live period beside the live trades, trade by trade (a fragment for HTMX polling
    while the run is queued or running)."""
    with new_session() as session:
        bot = owned_or_404(session, Bot, bot_id)
        run = owned_or_404(session, BacktestRun, run_id)
        if not live_backtest.belongs(bot, run):
            raise NotFound()
        parity = live_backtest.compare_run(session, bot, run) if run.status == "done" else None
        template = "bots/_parity.html" if request.headers.get("HX-Request") else "bots/backtest.html"
        return render_template(template, bot=bot, run=run, parity=parity)


@bp.app_template_filter("bot_candle_time")
def _candle_time(open_time_ms: int) -> str:
    return format_candle_time(open_time_ms) or ""
