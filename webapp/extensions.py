from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user
from flask_wtf import CSRFProtect
from htmx_flask import Htmx

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message_category = "info"
login_manager.session_protection = "strong"
csrf = CSRFProtect()
htmx = Htmx()
limiter = Limiter(
    key_func=get_remote_address,
    default_limits=[],
    swallow_errors=True,
    in_memory_fallback_enabled=True,
    headers_enabled=True,
)

# Endpoints that start real work (a sandboxed strategy run, a backtest, a call to the AI provider).
EXPENSIVE_LIMIT = "10 per minute"


def _per_user() -> str:
    return f"user:{current_user.id}" if current_user.is_authenticated else get_remote_address()


def expensive(view):
    """At most EXPENSIVE_LIMIT POSTs per user to this endpoint (counted in Redis, shared by every web process)."""
    return limiter.limit(EXPENSIVE_LIMIT, key_func=_per_user, methods=["POST"])(view)
