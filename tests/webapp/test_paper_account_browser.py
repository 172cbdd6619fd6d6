"""Journey: a trader the admin created (no venue keys anywhere) opens a paper account on the simulator
in one click, sees it funded, and starts it over once nothing trades on it, keeping the old history."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from core.infra.config import get_settings
from core.infra.db import session_scope
from core.models import BrokerConnection, Order
from core.orders.submit import OrderIntent, record_order

SCREENSHOT = Path("/tmp/paper-account.png")


@pytest.fixture()
def paper_settings(sim, monkeypatch):
    """The settings the web app reads, pointing at this module's simulator (the shipped port is 8900)."""
    settings = get_settings()
    sim_config = settings.file.sim.model_copy(update={"port": urlsplit(sim.url).port})
    patched = settings.model_copy(update={"file": settings.file.model_copy(update={"sim": sim_config})})
    for module in ("core.brokers", "core.paper_accounts", "webapp.brokers"):
        monkeypatch.setattr(f"{module}.get_settings", lambda: patched)
    return patched


def _connections(user_id: int) -> dict[str, BrokerConnection]:
    with session_scope() as session:
        rows = session.scalars(select(BrokerConnection).where(BrokerConnection.user_id == user_id))
        return {broker.label: broker for broker in rows}


def test_a_new_trader_opens_a_paper_account_in_one_click_and_starts_it_over(page, browser_login, paper_settings):
    problems: list[str] = []  # no console error and no failed request (the favicon included) on the way
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on(
        "response", lambda response: response.status >= 400 and problems.append(f"{response.status} {response.url}")
    )
    user, _ = browser_login()
    page.goto("/brokers/")
    page.click("#paper button:has-text('Create a paper account')")
    expect(page.locator(".flash.success")).to_contain_text("Paper account ready")
    row = page.locator("#connections tr[data-broker]", has_text="Simulator")
    expect(row).to_have_count(1)
    expect(row).not_to_contain_text("not loaded")  # its markets came with it
    row.locator("button:has-text('Test connection')").click()
    balance = paper_settings.file.sim.demo_balance_usdt
    expect(page.locator("#connections .check-result .check-ok")).to_contain_text(f"USDT {balance}")
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    first = _connections(user.id)["Simulator"]
    assert first.venue == "sim" and first.credentials()["api_secret"]

    # An order not yet finished blocks starting over, with the reason; nothing changes.
    with session_scope() as session:
        intent = OrderIntent(broker_id=first.id, symbol="BTCUSDT", side="buy", type="market", quantity=Decimal("0.01"))
        order_id = record_order(session, user.id, intent).id
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#paper button:has-text('Start over')")
    expect(page.locator(".flash.error")).to_contain_text("still trades: open orders")
    assert set(_connections(user.id)) == {"Simulator"}

    with session_scope() as session:
        session.execute(update(Order).where(Order.id == order_id).values(state="rejected"))
    page.click("#paper button:has-text('Start over')")
    expect(page.locator(".flash.success")).to_contain_text("A fresh paper account is ready")
    connections = _connections(user.id)
    archived = next(label for label in connections if label.startswith("Simulator until "))
    assert connections[archived].id == first.id  # the old account keeps its id, so its orders keep their venue
    fresh = connections["Simulator"]
    assert fresh.id != first.id and fresh.credentials()["api_key"] != first.credentials()["api_key"]
    expect(page.locator("#connections tr[data-broker]")).to_have_count(2)
    fresh_row = page.locator(f"#connections tr[data-broker='{fresh.id}']")
    fresh_row.locator("button:has-text('Test connection')").click()
    expect(page.locator(f"#check-{fresh.id} .check-ok")).to_contain_text(f"USDT {balance}")
    assert problems == []


def test_without_a_simulator_the_trader_is_told_why_and_nothing_is_saved(page, browser_login, monkeypatch):
    settings = get_settings()
    unreachable = settings.file.sim.model_copy(update={"port": 9})  # discard: nothing listens there
    patched = settings.model_copy(update={"file": settings.file.model_copy(update={"sim": unreachable})})
    monkeypatch.setattr("core.paper_accounts.get_settings", lambda: patched)
    user, _ = browser_login()
    page.goto("/brokers/")
    page.click("#paper button:has-text('Create a paper account')")
    expect(page.locator(".flash.error")).to_contain_text("the simulator is not reachable")
    assert _connections(user.id) == {}
