"""Strategies: list, new from a template, the editor (validate, save, params, versions, try, AI panel)."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from core.infra.db import new_session, session_scope
from core.strategies import store
from core.strategies.assistant import NOT_CONFIGURED_HELP, SERVER_EXAMPLES, AssistantClient, AssistantError
from core.strategies.contract import format_candle_time
from core.strategies.sandbox import SandboxError, SandboxLimits
from core.strategies.templates import list_templates
from core.strategies.validation import validate_strategy_code
from webapp.extensions import expensive

logger = logging.getLogger(__name__)

bp = Blueprint("strategies", __name__, url_prefix="/strategies")
bp.add_app_template_filter(format_candle_time, "candle_time")

# Try-on-candles runs inside the web request: bounded well below gunicorn's timeout.
TRY_LIMITS = SandboxLimits(cpu_seconds=10.0, wall_seconds=15.0)
DEFAULT_TRY_CANDLES = 500
MAX_CHAT_TURNS = 20


def _owned(session, strategy_id: int):
    try:
        return store.get_strategy(session, current_user.id, strategy_id)
    except store.StrategyNotFound:
        abort(404)


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _param_fields(defaults: dict[str, Any], values: dict[str, Any], posted: dict[str, str] | None = None) -> list[dict]:
    """One form field per parameter: its default, its current value (as typed if posted), its kind."""
    fields = []
    for name, default in defaults.items():
        kind = "bool" if isinstance(default, bool) else "number" if isinstance(default, (int, float)) else "text"
        value = posted.get(name) if posted and name in posted else _param_text(values.get(name, default))
        fields.append(
            {
                "name": name,
                "kind": kind,
                "value": value,
                "default": _param_text(default),
                "type": type(default).__name__,
            }
        )
    return fields


def _posted_params(form) -> dict[str, str]:
    return {key[len("param.") :]: value for key, value in form.items() if key.startswith("param.")}


def _posted_overrides(form) -> dict[str, str]:
    """Only the values the trader changed from the default the form showed: an untouched field
    follows the code's default even after the code changes it."""
    return {name: value for name, value in _posted_params(form).items() if value != form.get(f"default.{name}")}


def _posted_code() -> str:
    # HTML forms send textarea line breaks as CRLF; the trader typed (and CodeMirror holds) LF.
    return request.form.get("code", "").replace("\r\n", "\n")


def _assistant() -> AssistantClient:
    return AssistantClient.from_settings(current_app.config["ARISTOBOT_SETTINGS"], timeout=120.0)


# --------------------------------------------------------------------------- list / new / delete


@bp.get("/")
@login_required
def index():
    with new_session() as session:
        strategies = store.list_strategies(session, current_user.id)
        rows = [
            {
                "id": s.id,
                "name": s.name,
                "description": s.description,
                "versions": len(s.versions),
                "valid": s.latest.valid if s.latest else False,
                "updated_at": s.updated_at,
            }
            for s in strategies
        ]
    return render_template("strategies/index.html", strategies=rows)


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    templates = list_templates()
    error, status = None, 200
    chosen = request.form.get("template", templates[0].name)
    name = request.form.get("name", "")
    if request.method == "POST":
        try:
            with session_scope() as session:
                strategy = store.create_strategy(session, current_user.id, name, template=chosen or None)
                strategy_id = strategy.id
            flash(f"Strategy {' '.join(name.split())} created.", "success")
            return redirect(url_for("strategies.editor", strategy_id=strategy_id))
        except store.StrategyStoreError as exc:
            error, status = str(exc), 400
    return render_template("strategies/new.html", templates=templates, chosen=chosen, name=name, error=error), status


@bp.post("/<int:strategy_id>/delete")
@login_required
def delete(strategy_id: int):
    with session_scope() as session:
        strategy = _owned(session, strategy_id)
        name = strategy.name
        store.delete_strategy(session, strategy)
    flash(f"Strategy {name} deleted.", "success")
    return redirect(url_for("strategies.index"))


# --------------------------------------------------------------------------- editor


def _render_editor(
    session,
    strategy,
    *,
    code: str | None = None,
    posted_params: dict | None = None,
    param_errors: dict | None = None,
    error: str | None = None,
    status: int = 200,
):
    latest = strategy.latest
    shown_code = latest.code if code is None else code
    report = validate_strategy_code(latest.code)
    values = store.effective_params(latest, report)
    series = store.candle_series(session)
    assistant = _assistant()
    context = {
        "strategy": strategy,
        "latest": latest,
        "versions": list(reversed(strategy.versions)),
        "code": shown_code,
        "report": validate_strategy_code(shown_code) if code is not None else report,
        "params": _param_fields(report.params if report.ok else {}, values, posted_params),
        "param_errors": param_errors or {},
        "error": error,
        "series": series,
        "default_count": DEFAULT_TRY_CANDLES,
        "max_count": store.MAX_TRY_CANDLES,
        "assistant_configured": assistant.configured,
        "assistant_help": NOT_CONFIGURED_HELP,
        "assistant_setup": assistant.setup_keys(),
        "assistant_servers": SERVER_EXAMPLES,
    }
    return render_template("strategies/editor.html", **context), status


@bp.get("/<int:strategy_id>")
@login_required
def editor(strategy_id: int):
    with new_session() as session:
        return _render_editor(session, _owned(session, strategy_id))


@bp.post("/<int:strategy_id>/save")
@login_required
def save(strategy_id: int):
    code = _posted_code()
    note = request.form.get("note", "")
    with session_scope() as session:
        strategy = _owned(session, strategy_id)
        try:
            version = store.save_version(session, strategy, code, params=_posted_overrides(request.form), note=note)
        except store.StrategyParamsInvalid as exc:
            return _render_editor(
                session,
                strategy,
                code=code,
                posted_params=_posted_params(request.form),
                param_errors=exc.field_errors,
                error="Not saved: fix the parameters below.",
                status=400,
            )
        except store.StrategyStoreError as exc:
            return _render_editor(
                session,
                strategy,
                code=code,
                posted_params=_posted_params(request.form),
                error=f"Not saved: {exc}",
                status=400,
            )
        number, valid, errors = version.number, version.valid, version.errors
    if valid:
        flash(f"Saved version {number}.", "success")
    else:
        first = errors[0]
        flash(
            f"Saved version {number}, but it does not validate (line {first['line']}: {first['message']}); "
            "it cannot run until fixed.",
            "error",
        )
    return redirect(url_for("strategies.editor", strategy_id=strategy_id))


@bp.post("/<int:strategy_id>/validate")
@login_required
def validate(strategy_id: int):
    with new_session() as session:
        _owned(session, strategy_id)
    report = validate_strategy_code(_posted_code())
    return render_template("strategies/_validation.html", report=report)


@bp.post("/<int:strategy_id>/restore/<int:number>")
@login_required
def restore(strategy_id: int, number: int):
    with session_scope() as session:
        strategy = _owned(session, strategy_id)
        try:
            version = store.restore_version(session, strategy, number)
        except store.StrategyNotFound:
            abort(404)
        restored = version.number
    flash(f"Version {number} restored as version {restored}.", "success")
    return redirect(url_for("strategies.editor", strategy_id=strategy_id))


@bp.get("/<int:strategy_id>/diff")
@login_required
def diff(strategy_id: int):
    with new_session() as session:
        strategy = _owned(session, strategy_id)
        latest = strategy.latest.number
        old = request.args.get("a", type=int) or max(latest - 1, 1)
        new_ = request.args.get("b", type=int) or latest
        try:
            text = store.diff_versions(strategy, old, new_)
        except store.StrategyNotFound:
            abort(404)
        numbers = [v.number for v in strategy.versions]
        return render_template("strategies/diff.html", strategy=strategy, diff=text, a=old, b=new_, numbers=numbers)


# --------------------------------------------------------------------------- try on recent candles


@bp.post("/<int:strategy_id>/try")
@login_required
@expensive
def try_on_candles(strategy_id: int):
    code = _posted_code()
    with new_session() as session:
        _owned(session, strategy_id)
        report = validate_strategy_code(code)
        if not report.ok:
            return render_template("strategies/_try.html", report=report)
        venue, _, rest = request.form.get("series", "").partition("|")
        symbol, _, timeframe = rest.partition("|")
        try:
            count = int(request.form.get("count", DEFAULT_TRY_CANDLES))
            params = store.check_params(report.params, _posted_overrides(request.form))
            candles = store.recent_candles(session, venue, symbol, timeframe, count)
        except ValueError:
            return render_template("strategies/_try.html", message="The number of candles must be a whole number.")
        except store.StrategyParamsInvalid as exc:
            return render_template("strategies/_try.html", message=f"Parameters: {exc}")
        except store.StrategyStoreError as exc:
            return render_template("strategies/_try.html", message=str(exc))
    try:
        result = store.try_on_candles(
            code, params, candles, limits=current_app.config.get("STRATEGY_TRY_LIMITS", TRY_LIMITS)
        )
    except SandboxError as exc:
        return render_template("strategies/_try.html", failure=exc.error)
    chart = {
        "candles": [
            {
                "time": row[0] // 1000,
                "open": float(row[1]),
                "high": float(row[2]),
                "low": float(row[3]),
                "close": float(row[4]),
            }
            for row in result.candles
        ],
        "signals": [dict(s, time=s["time"] // 1000) for s in result.signals],
    }
    return render_template(
        "strategies/_try.html", result=result, chart=json.dumps(chart), title=f"{symbol} {timeframe} on {venue}"
    )


# --------------------------------------------------------------------------- AI assistant


def _chat_history(raw: str) -> list[dict[str, str]]:
    try:
        history = json.loads(raw or "[]")
    except ValueError:
        return []
    if not isinstance(history, list):
        return []
    turns = [
        {"role": m.get("role"), "content": str(m.get("content", ""))}
        for m in history
        if isinstance(m, dict) and m.get("role") in ("user", "assistant")
    ]
    return turns[-MAX_CHAT_TURNS:]


@bp.post("/<int:strategy_id>/assistant")
@login_required
@expensive
def assistant(strategy_id: int):
    with new_session() as session:
        _owned(session, strategy_id)
    owner = {"id": strategy_id}  # what the panel template needs of the strategy
    history = _chat_history(request.form.get("history", ""))
    message = request.form.get("message", "").strip()
    client = _assistant()
    if not client.configured:
        return render_template(
            "strategies/_assistant.html",
            strategy=owner,
            history=history,
            help=NOT_CONFIGURED_HELP,
            assistant_setup=client.setup_keys(),
            assistant_servers=SERVER_EXAMPLES,
            history_json=json.dumps(history),
        )
    if not message:
        return render_template(
            "strategies/_assistant.html",
            strategy=owner,
            history=history,
            error="Type a request first.",
            history_json=json.dumps(history),
        )
    history.append({"role": "user", "content": message})
    reply, error = None, None
    try:
        reply = client.complete(history, current_code=_posted_code() or None)
    except (AssistantError, ValueError) as exc:
        error = str(exc)
        history.pop()  # the request failed: the trader can send the same message again
    if reply is not None:
        history.append({"role": "assistant", "content": reply.text})
        logger.info(
            "strategies.assistant_reply",
            extra={
                "user_id": current_user.id,
                "strategy_id": strategy_id,
                "code": reply.code is not None,
                "valid": bool(reply.validation and reply.validation.ok),
            },
        )
    return render_template(
        "strategies/_assistant.html",
        strategy=owner,
        history=history,
        reply=reply,
        error=error,
        history_json=json.dumps(history),
        last_message=message if error else "",
    )
