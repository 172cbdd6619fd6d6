"""Flask app factory: one blueprint per area, tiny views that call domain functions in `core`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import Flask, render_template
from flask_login import current_user
from htmx_flask import request
from sqlalchemy.exc import SQLAlchemyError

from core.halt import trading_halted
from core.infra.config import Settings, get_settings
from core.infra.db import new_session
from core.infra.security import register_secret
from core.models import User
from webapp import (
    admin,
    arbitrage,
    arbitrage_history,
    auth,
    backtests,
    bots,
    brokers,
    fragments,
    health,
    heartbeat,
    home,
    marketdata,
    notifications,
    numbers,
    security_headers,
    statistics,
    stop,
    strategies,
    trading,
    trading_market,
    webhooks,
)
from webapp.extensions import csrf, htmx, limiter, login_manager

ROOT = Path(__file__).resolve().parents[1]

# (title, endpoint, admin only).
NAVIGATION = [
    ("Heartbeat", "heartbeat.index", False),
    ("Market data", "marketdata.index", False),
    ("Trading", "trading.index", False),
    ("Brokers", "brokers.index", False),
    ("Webhooks", "webhooks.index", False),
    ("Strategies", "strategies.index", False),
    ("Bots", "bots.index", False),
    ("Backtests", "backtests.index", False),
    ("Statistics", "statistics.index", False),
    ("Arbitrage", "arbitrage.index", True),
    ("Admin", "admin.users", True),
]


def create_app(settings: Settings | None = None, **overrides) -> Flask:
    settings = settings or get_settings()
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.config.update(
        SECRET_KEY=settings.secrets.SECRET_KEY,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.file.web.session_cookie_secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=settings.file.web.session_cookie_secure,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_DURATION=timedelta(days=14),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=1024 * 1024,
        RATELIMIT_STORAGE_URI=settings.redis_url,
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 1, "socket_timeout": 1},
        WTF_CSRF_TIME_LIMIT=None,
        ARISTOBOT_SETTINGS=settings,
    )
    app.config.update(overrides)
    register_secret(settings.secrets.SECRET_KEY)
    register_secret(settings.secrets.AI_API_KEY)  # masked wherever it appears, not only under its name
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    htmx.init_app(app)  # request.htmx reads the HX-* request headers; make_response writes the response ones
    security_headers.init_app(app)
    _register_blueprints(app)
    _register_template_helpers(app)
    _register_error_pages(app)
    fragments.init_app(app)
    numbers.init_app(app)
    return app


# One module per area, each exposing `bp`. Imported by name above: a renamed or missing area stops the
# app at start with an ImportError instead of quietly taking its pages away.
AREAS = (
    auth,
    home,
    admin,
    health,
    brokers,
    trading,
    trading_market,
    heartbeat,
    marketdata,
    webhooks,
    strategies,
    bots,
    backtests,
    statistics,
    arbitrage,
    arbitrage_history,
    stop,
    notifications,
)


def _register_blueprints(app: Flask) -> None:
    for area in AREAS:
        app.register_blueprint(area.bp)


@login_manager.user_loader
def _load_user(session_id: str) -> User | None:
    """The user of a session or remember-me cookie, while that cookie's epoch is still the user's."""
    try:
        user_id, epoch, nonce = session_id.split(":")
        key, epoch = int(user_id), int(epoch)
    except ValueError:
        return None  # not a value this app issued (or one from before session epochs)
    with new_session() as session:
        user = session.get(User, key)
    if user is None or not user.is_active or user.session_epoch != epoch:
        return None
    user.session_nonce = nonce
    return user


def _register_template_helpers(app: Flask) -> None:
    @app.context_processor
    def navigation():
        items = [
            (title, endpoint)
            for title, endpoint, admin_only in NAVIGATION
            if not admin_only or getattr(current_user, "is_admin", False)
        ]
        # A callable: only full pages (base.html) ask the database, not every polled fragment.
        return {"navigation": items, "trading_halted": _halted}


def _halted() -> bool:
    """The admin's trading halt, for the banner; a page rendered while the database is down omits it."""
    try:
        with new_session() as session:
            return trading_halted(session)
    except SQLAlchemyError:
        return False


def _register_error_pages(app: Flask) -> None:
    for code, title in ((403, "Forbidden"), (404, "Not found"), (413, "Too large"), (429, "Too many requests")):
        app.register_error_handler(code, lambda error, code=code, title=title: _error_page(error, code, title))


def _error_page(error, code: int, title: str):
    detail = getattr(error, "description", "")
    if code == 429:
        detail = f"this action is limited to {detail}. Wait a minute, then try again."
    # An htmx request shows the answer in the part of the page it was about to replace.
    template = "_error_fragment.html" if request.htmx else "error.html"
    return render_template(template, code=code, title=title, detail=detail), code
