"""`aristobot ledger check`, run as a process: every bot's and webhook's position recomputed from the
fills as the Statistics page and as the bots and webhooks ask it; a ledger that disagrees exits 1."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from cli.main import main
from core.infra.db import session_scope
from core.models import Fill, Order
from tests.conftest import ROOT, process_env
from tests.ledger_support import Ledger

DAY1 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=ROOT, env=process_env(), timeout=120
    )


@pytest.mark.slow  # a command-line process
def test_ledger_check_finds_every_position_in_agreement_and_reports_one_that_is_not(make_user):
    user, _ = make_user()
    ledger = Ledger(user.id)
    desk, other = ledger.broker("Desk"), ledger.broker("Other desk")
    bot, alert = ledger.bot(desk, "dusty"), ledger.webhook_alert(desk, "tv")
    at = [DAY1 + timedelta(hours=n) for n in range(5)]
    ledger.trade(desk, "buy", "0.001", "50000", at[0], fee="0.000001", fee_asset="BTC", source="bot", source_ref=bot)
    ledger.trade(desk, "sell", "0.001", "51000", at[1], fee="0.051", source="bot", source_ref=bot)
    ledger.trade(desk, "sell", "0.01", "3000", at[2], source="webhook", source_ref=alert, symbol="ETHUSDT")
    ledger.trade(desk, "buy", "0.5", "100", at[3])  # manual: no other way to ask it

    result = cli("ledger", "check", "--user", user.username, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["users_checked"], report["positions_checked"], report["disagreements"]) == (1, 3, 0)

    # A bot fill recorded on another broker than its order's: the Statistics page books it apart, the bot
    # counts it in its position; the check names the book and exits 1.
    ledger.trade(desk, "buy", "0.002", "52000", at[4], source="bot", source_ref=bot)
    with session_scope() as session:
        order_id = session.query(Order.id).filter(Order.source_ref == bot).order_by(Order.id.desc()).first()[0]
        session.query(Fill).filter(Fill.order_id == order_id).update({"broker_id": other})
    # The same command in this process (one process start is enough to prove the command line).
    result = CliRunner().invoke(main, ["ledger", "check", "--user", user.username])
    assert result.exit_code == 1
    assert "disagreement" in result.stdout and f"broker #{desk} · BTCUSDT · bot:{bot}: quantity" in result.stdout

    unknown = CliRunner().invoke(main, ["ledger", "check", "--user", "nobody-like-this", "--json"])
    assert unknown.exit_code == 2 and "no user named 'nobody-like-this'" in unknown.output
