"""Bots: list, create, start/pause/resume/delete, and each bot's decisions, orders, position and P&L."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange

from core.bots import manage
from core.brokers import list_connections, symbols_of
from core.infra.config import TIMEFRAMES
from core.infra.db import new_session, session_scope
from core.models import Bot
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
        )


def _form(session) -> tuple[BotForm, list[str]]:
    form = BotForm()
    form.strategy_version_id.choices = manage.version_choices(session, current_user.id)
    brokers = list_connections(session, current_user.id)
    form.broker_id.choices = [(broker.id, f"{broker.label} ({broker.venue})") for broker in brokers]
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
        "ticks": manage.recent_ticks(session, bot.id),
        "orders": manage.bot_orders(session, bot.id),
        "version_label": dict(manage.version_choices(session, current_user.id)).get(bot.strategy_version_id),
    }


@bp.get("/<int:bot_id>")
@login_required
def detail(bot_id: int):
    with new_session() as session:
        bot = owned_or_404(session, Bot, bot_id)
        return render_template("bots/detail.html", **_page_data(session, bot))


@bp.get("/<int:bot_id>/live")
@login_required
def live(bot_id: int):
    """State, error, position and the recent decisions, for HTMX polling."""
    with new_session() as session:
        bot = owned_or_404(session, Bot, bot_id)
        return render_template("bots/_live.html", **_page_data(session, bot))


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


@bp.post("/<int:bot_id>/delete")
@login_required
def delete(bot_id: int):
    return _change(
        bot_id, manage.delete_bot, "Bot deleted. Its orders stay in the trading history.", after=url_for("bots.index")
    )


@bp.app_template_filter("bot_candle_time")
def _candle_time(open_time_ms: int) -> str:
    return format_candle_time(open_time_ms) or ""
