"""Journey in Chromium under the real Content-Security-Policy: pages run with no violation, and the
behaviours that were inline handlers (confirm before delete) still work from static/js/ui.js."""

from __future__ import annotations

import pytest

from core.infra.db import new_session
from core.models import StrategyRecord
from tests.backtest_support import make_strategy

pytestmark = pytest.mark.browser

PAGES = [
    "/",
    "/trading/",
    "/brokers/",
    "/strategies/",
    "/backtests/",
    "/backtests/new",
    "/statistics/",
    "/heartbeat/",
    "/webhooks/",
    "/bots/",
    "/marketdata/",
    "/account/password",
]


def test_pages_run_without_a_single_policy_violation(page, browser_login, db_session):
    problems = []
    page.on("console", lambda m: problems.append(f"{page.url}: {m.text}") if m.type in ("error", "warning") else None)
    user, _ = browser_login()
    version = make_strategy(db_session, user.id)
    for path in PAGES + [f"/strategies/{version.strategy_id}"]:
        page.goto(path)
        page.wait_for_load_state("networkidle")
    assert page.evaluate("typeof htmx") == "object"
    # htmx read its config from the page: no eval, and a 429 fragment is shown in place.
    assert page.evaluate("htmx.config.allowEval") is False and page.evaluate("htmx.config.allowScriptTags") is False
    assert page.evaluate("htmx.config.responseHandling.find(r => new RegExp(r.code).test('429')).swap") is True
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


def test_delete_asks_first_and_cancel_keeps_the_strategy(page, browser_login, db_session):
    user, _ = browser_login()
    version = make_strategy(db_session, user.id, name="keep-me")
    page.goto(f"/strategies/{version.strategy_id}")
    page.wait_for_load_state("networkidle")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.click("button.danger:has-text('Delete')")
    page.wait_for_timeout(300)
    assert asked == ["Delete keep-me and all its versions?"]
    assert page.url.endswith(f"/strategies/{version.strategy_id}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button.danger:has-text('Delete')")
    page.wait_for_url("**/strategies/")
    with new_session() as session:
        assert session.get(StrategyRecord, version.strategy_id) is None


def test_an_injected_inline_script_is_refused_by_the_browser(page, browser_login):
    browser_login()
    page.goto("/")
    page.wait_for_load_state("networkidle")
    ran = page.evaluate("""() => new Promise((resolve) => {
        window.__ran = false;
        document.addEventListener('securitypolicyviolation', () => resolve(window.__ran), {once: true});
        const s = document.createElement('script');
        s.textContent = 'window.__ran = true';
        document.body.appendChild(s);
        setTimeout(() => resolve(window.__ran), 1000);
    })""")
    assert ran is False
