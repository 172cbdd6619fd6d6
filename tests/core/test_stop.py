# ruff: noqa: F811  (fixtures imported from tests.core.bots.fixtures are parameters here)
"""Pause all, a disabled user's automation, and the configured limits on users and running bots."""

from __future__ import annotations

import secrets
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core import accounts, limits
from core.bots import manage
from core.infra.config import LimitsConfig, get_settings
from core.infra.db import new_session, session_scope
from core.models import Bot, User, Webhook
from core.stop import PAUSED_USER_DISABLED, open_orders, pause_all
from core.webhooks.setup import WebhookSettings, create_webhook
from tests.core.bots.fixtures import bot_trader, make_bot  # noqa: F401


def _webhook(trader) -> int:
    with session_scope() as session:
        webhook, _ = create_webhook(
            session,
            trader.user_id,
            WebhookSettings(
                name=f"tv-{secrets.token_hex(3)}",
                broker_id=trader.broker_id,
                size_mode="quantity",
                size_value=Decimal("0.01"),
                symbol="BTCUSDT",
            ),
        )
        return webhook.id


def _states(bot_ids, webhook_ids) -> tuple[list[str], list[bool]]:
    with new_session() as session:
        return ([session.get(Bot, i).state for i in bot_ids], [session.get(Webhook, i).paused for i in webhook_ids])


@pytest.fixture()
def small_install(monkeypatch):
    """The shipped limits shrunk to this test's numbers, through the real settings object."""

    def shrink(**values):
        settings = get_settings()
        changed = settings.file.model_copy(update={"limits": LimitsConfig(**values)})
        monkeypatch.setattr(limits, "get_settings", lambda: settings.model_copy(update={"file": changed}))

    return shrink


def test_pause_all_pauses_every_bot_and_webhook_of_that_user_only(bot_trader, make_bot, make_user):
    bots, hooks = [make_bot(bot_trader), make_bot(bot_trader)], [_webhook(bot_trader), _webhook(bot_trader)]
    with session_scope() as session:
        report = pause_all(session, bot_trader.user_id)
    assert (report.bots, report.webhooks) == (2, 2) and str(report) == "paused 2 bot(s) and 2 webhook(s)"
    assert _states(bots, hooks) == (["paused", "paused"], [True, True])
    with new_session() as session:
        assert session.get(Webhook, hooks[0]).paused_reason == "paused by the trader's pause all"
    with session_scope() as session:  # again: nothing left to pause
        assert str(pause_all(session, bot_trader.user_id)) == "paused 0 bot(s) and 0 webhook(s)"


def test_disabling_a_user_pauses_their_automation_at_once(bot_trader, make_bot):
    bot_id, hook_id = make_bot(bot_trader), _webhook(bot_trader)
    order_id = bot_trader.order()
    with session_scope() as session:
        username = session.get(User, bot_trader.user_id).username
        user, paused = accounts.set_active(session, username, False)
        assert not user.is_active and (paused.bots, paused.webhooks) == (1, 1)
        assert [o.id for o in open_orders(session, user.id)] == [order_id]  # the admin decides about these
    assert _states([bot_id], [hook_id]) == (["paused"], [True])
    with new_session() as session:
        assert session.get(Webhook, hook_id).paused_reason == PAUSED_USER_DISABLED
    with session_scope() as session:
        _, paused = accounts.set_active(session, username, True)
    assert paused is None and _states([bot_id], [hook_id]) == (["paused"], [True])  # resumed by hand only


def test_the_21st_running_bot_is_refused(bot_trader, make_bot, small_install):
    small_install(max_running_bots_per_user=2)
    first, second = make_bot(bot_trader), make_bot(bot_trader)
    third = make_bot(bot_trader, start=False)
    with session_scope() as session, pytest.raises(manage.BotError, match="at most 2 bots at once"):
        manage.start_bot(session, session.get(Bot, third))
    with session_scope() as session:
        manage.start_bot(session, session.get(Bot, first))  # an already running one may be restarted
        manage.pause_bot(session, session.get(Bot, second))
    with session_scope() as session:
        manage.start_bot(session, session.get(Bot, third))
    assert _states([first, second, third], [])[0] == ["running", "paused", "running"]


def test_the_6th_active_user_is_refused(make_user, small_install):
    spare, _ = make_user()
    with new_session() as session:
        active = session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.is_active.is_(True), User.username.not_like(f"{limits.BENCH_ACCOUNT_PREFIX}%"))
        )
    small_install(max_active_users=active)
    with session_scope() as session, pytest.raises(accounts.AccountError, match=f"at most {active} active users"):
        accounts.create_user(session, f"u{secrets.token_hex(4)}", "long-enough-password")
    with session_scope() as session:  # a bench's own account is not a trader of the installation
        accounts.create_user(
            session, f"{limits.BENCH_ACCOUNT_PREFIX}{secrets.token_hex(4)}", "long-enough-password", within_limits=False
        )
    small_install(max_active_users=active + 1)
    with session_scope() as session:  # the bench account took no seat: one is still free
        accounts.create_user(session, f"u{secrets.token_hex(4)}", "long-enough-password")
    with session_scope() as session:
        accounts.set_active(session, spare.username, False)
    with session_scope() as session:
        accounts.create_user(session, f"u{secrets.token_hex(4)}", "long-enough-password")  # the seat it freed
    with session_scope() as session, pytest.raises(accounts.AccountError, match="limits.max_active_users"):
        accounts.set_active(session, spare.username, True)
