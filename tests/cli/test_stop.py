# ruff: noqa: F811  (fixtures imported from tests.core.bots.fixtures are parameters here)
"""The operator's commands, run as processes: `aristobot halt --user`, `aristobot flatten --user [--broker]`,
`aristobot trading halt|resume`, `aristobot user disable --cancel-orders`."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

from core.halt import trading_halted
from core.infra.db import new_session
from core.models import Bot, User, Webhook
from core.orders import placement
from tests.conftest import ROOT, process_env
from tests.core.bots.fixtures import bot_trader, make_bot  # noqa: F401
from tests.stop_support import DEAD_URL, make_desk, order_state, positions, second_broker
from tests.trading_support import Trader


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=ROOT, env=process_env(), timeout=120
    )


def _username(user_id: int) -> str:
    with new_session() as session:
        return session.get(User, user_id).username


def test_halt_pauses_everything_of_the_user(bot_trader, make_bot):
    desk = make_desk(bot_trader, make_bot)
    result = cli("halt", "--user", _username(bot_trader.user_id))
    assert result.returncode == 0, result.stderr
    assert "paused 1 bot(s) and 1 webhook(s)" in result.stdout
    with new_session() as session:
        assert session.get(Bot, desk.bot_id).state == "paused" and session.get(Webhook, desk.webhook_id).paused
    unknown = cli("halt", "--user", "nobody-like-this")
    assert unknown.returncode == 1 and "no user 'nobody-like-this'" in unknown.stderr


def test_flatten_lists_the_plan_and_a_failing_broker(bot_trader, make_bot):
    desk = make_desk(bot_trader, make_bot)
    failing = second_broker(bot_trader, "Down")
    resting = bot_trader.order(broker_id=failing, type="limit", price=Decimal("1000"))
    assert placement.place(resting).state == "open"
    Trader(bot_trader.user_id, failing, "", "", bot_trader.sim).point_at(DEAD_URL)
    name = _username(bot_trader.user_id)
    declined = subprocess.run(
        [sys.executable, "-m", "cli", "flatten", "--user", name],
        input="n\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=process_env(),
        timeout=120,
    )
    assert declined.returncode == 1 and f"cancel order #{desk.resting_order_id}" in declined.stdout
    assert order_state(desk.resting_order_id) == "open"  # declined: nothing done
    only_good = cli("flatten", "--user", name, "--broker", str(bot_trader.broker_id), "--yes")
    assert only_good.returncode == 0, only_good.stdout + only_good.stderr
    assert positions(desk) == (0, 0) and order_state(desk.resting_order_id) == "cancelled"
    both = cli("flatten", "--user", name, "--yes")
    assert both.returncode == 1, both.stdout  # the failed broker is listed with what is left on it
    assert "Down: FAILED" in both.stdout and f"left: cancel order #{resting}: buy limit BTCUSDT (open)" in both.stdout
    assert order_state(resting) == "open"


def test_trading_switch_from_the_command_line(infra):
    try:
        assert cli("trading", "halt").stdout.strip() == "trading is halted"
        with new_session() as session:
            assert trading_halted(session)
        assert cli("trading", "resume").stdout.strip() == "trading resumed"
        with new_session() as session:
            assert not trading_halted(session)
    finally:  # the halt is global: never leave it on for the tests after this one
        cli("trading", "resume")


def test_user_disable_pauses_and_cancels(bot_trader, make_bot):
    desk = make_desk(bot_trader, make_bot)
    waiting = bot_trader.order()
    result = cli("user", "disable", _username(bot_trader.user_id), "--cancel-orders")
    assert result.returncode == 0, result.stderr
    assert (
        "paused 1 bot(s) and 1 webhook(s)" in result.stdout and "2 open order(s) sent for cancelling" in result.stdout
    )
    with new_session() as session:
        assert session.get(Bot, desk.bot_id).state == "paused"
    assert order_state(waiting) in ("new", "cancelled")  # handed to the `orders` queue
