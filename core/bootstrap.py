"""First-run data: the demo trader (and admin), and its broker connection on the simulator."""

from __future__ import annotations

import logging

from core import accounts
from core.config import Settings
from core.db import session_scope

log = logging.getLogger(__name__)


def ensure_demo_account(settings: Settings) -> list[str]:
    demo = settings.file.demo
    if not demo.create_user:
        return []
    with session_scope() as session:
        user = accounts.find_user(session, demo.username)
        if user is not None:
            return [f"Log in as '{demo.username}' (password printed at first start; "
                    f"reset with: aristobot user passwd {demo.username})."]
        password = accounts.generate_password()
        # The demo account administers this single-machine install; more users come from the admin page.
        accounts.create_user(session, demo.username, password, is_admin=True)
    log.info("demo_user_created", extra={"username": demo.username})
    return [f"Demo login (shown once): user '{demo.username}'  password '{password}'"]
