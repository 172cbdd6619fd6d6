"""First-run data: the demo trader (and admin), and its funded broker connection on the simulator."""

from __future__ import annotations

import logging

import requests

from core import accounts
from core.infra.config import Settings
from core.infra.db import session_scope
from core.infra.embedded_services import private_file, wait_for_port
from core.paper_accounts import ensure_paper_account

log = logging.getLogger(__name__)


def ensure_demo_account(settings: Settings, show_password: bool = False) -> list[str]:
    """Create the demo account once. Its password is shown in the returned lines only when `show_password`
    (a terminal); otherwise it goes to a file only this account can read, so no log ever holds it."""
    demo = settings.file.demo
    if not demo.create_user:
        return []
    password = None
    with session_scope() as session:
        user = accounts.find_user(session, demo.username)
        if user is None:
            password = accounts.generate_password()
            # The demo account administers this single-machine install; more users come from the admin page.
            user = accounts.create_user(session, demo.username, password, is_admin=True)
            log.info("demo_user_created", extra={"username": demo.username})
        user_id = user.id
    if password and show_password:
        lines = [f"Demo login (shown once): user '{demo.username}'  password '{password}'"]
    elif password:
        path = private_file(settings.var_dir / "demo-password", password + "\n")
        lines = [
            f"Demo login: user '{demo.username}', password in {path} (readable only by this account; "
            "delete it once you have logged in)."
        ]
    else:
        lines = [
            f"Log in as '{demo.username}' (password given at first start; "
            f"reset with: aristobot user passwd {demo.username})."
        ]
    return lines + _demo_broker_line(settings, user_id)


def _demo_broker_line(settings: Settings, user_id: int) -> list[str]:
    if not wait_for_port(settings.file.sim.port, settings.file.sim.host, timeout=30):
        return ["Simulator did not start: the demo broker connection was not created."]
    try:
        ensure_paper_account(user_id, settings)
    except requests.RequestException as exc:
        log.warning("demo_broker_failed", extra={"error": str(exc)})
        return [f"Demo broker connection not ready ({exc.__class__.__name__}); it is retried at next start."]
    return [f"Demo broker: 'Simulator' with {settings.file.sim.demo_balance_usdt} USDT (paper trading)."]
