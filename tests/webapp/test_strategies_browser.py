"""Journey in Chromium: new strategy from a template, type in CodeMirror, validate shows the error line,
save (leaving unsaved asks first), restore, try on candles draws the chart; without JS the textarea still
saves the code."""

from __future__ import annotations

import secrets
from decimal import Decimal

import pytest

from core.infra.db import new_session, session_scope
from core.models.candles import Candle
from core.strategies import store

pytestmark = pytest.mark.browser

BROKEN = (
    "from core.strategies import Strategy\n\n\nclass Typed(Strategy):\n"
    "    def should_long(self):\n        return self.data.close[-1] >\n"
)


@pytest.fixture(autouse=True)
def _fresh_login_budget(infra):
    from core.infra.bus import get_redis

    for key in get_redis().scan_iter("*LIMITER*"):
        get_redis().delete(key)


def _latest(user_id: int, name: str):
    with new_session() as session:
        strategy = next(s for s in store.list_strategies(session, user_id) if s.name == name)
        return strategy.latest.number, strategy.latest.code, strategy.latest.valid


def _new_strategy(page, name: str, template: str = "SMA cross"):
    page.goto("/strategies/new")
    page.fill("input[name=name]", name)
    page.click(f"label.template:has-text('{template}')")
    page.click("button:has-text('Create')")
    page.wait_for_selector(".cm-editor .cm-content")


def _type_into_editor(page, code: str):
    page.click(".cm-content")
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code)  # raw text: no auto-indent or bracket closing


def test_edit_validate_save_and_restore_in_codemirror(page, browser_login):
    user, _ = browser_login()
    _new_strategy(page, "Browser SMA")
    assert page.locator("#code").is_hidden()  # CodeMirror took over the textarea
    keyword = page.locator(".cm-content span", has_text="class").first  # Python highlighting: tokens in spans
    plain = page.locator(".cm-content").evaluate("el => getComputedStyle(el).color")
    assert keyword.evaluate("el => getComputedStyle(el).color") != plain
    original = _latest(user.id, "Browser SMA")[1]

    _type_into_editor(page, BROKEN)
    page.click("#validate-button")
    page.wait_for_selector("#validation .pill.bad")
    assert "line 6" in page.locator("#validation").inner_text()
    error_line = page.locator(".cm-line.cm-error-line")
    error_line.wait_for()
    assert error_line.count() == 1 and error_line.inner_text() == "        return self.data.close[-1] >"
    assert page.locator(".cm-gutter-lint .cm-lint-marker-error").count() == 1

    # Leaving with the typed code unsaved asks first; staying keeps the page and the code.
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.type), dialog.dismiss()))
    editor_url = page.url
    page.click("header a:has-text('Strategies')", no_wait_after=True)
    page.wait_for_function("() => true")  # a round trip: the dialog has been answered by now
    assert asked == ["beforeunload"] and page.url == editor_url
    assert page.input_value("#code") == BROKEN

    page.fill("input[name=note]", "typed in the browser")
    page.click("#save-button")
    page.wait_for_selector(".flash.error")
    assert "Saved version 2, but it does not validate" in page.locator(".flash.error").inner_text()
    assert _latest(user.id, "Browser SMA") == (2, BROKEN, False)
    assert page.input_value("#code") == BROKEN  # the reloaded editor holds the code as typed
    assert page.locator(".cm-line").nth(5).inner_text() == "        return self.data.close[-1] >"

    page.click("#versions button.restore[data-version='1']")
    page.wait_for_selector(".flash.success")
    assert "Version 1 restored as version 3" in page.locator(".flash.success").inner_text()
    assert _latest(user.id, "Browser SMA") == (3, original, True)
    assert "class SmaCross" in page.locator(".cm-content").inner_text()

    page.click("#versions a:has-text('diff') >> nth=0")  # newest first: v2 -> v3
    page.wait_for_selector("pre.diff")
    assert "+class SmaCross(Strategy):" in page.locator("pre.diff").inner_text()


def test_try_on_candles_draws_signals_on_the_chart(page, browser_login):
    symbol = f"BR{secrets.token_hex(2).upper()}"
    with session_scope() as session:
        for i in range(300):
            price = Decimal(100 + (i % 30) - 15 * ((i // 30) % 2))
            session.add(
                Candle(
                    venue="test",
                    symbol=symbol,
                    timeframe="1m",
                    open_time=1_700_000_000_000 + i * 60_000,
                    open=price,
                    high=price + 1,
                    low=price - 1,
                    close=price,
                    volume=Decimal(2),
                )
            )
    browser_login()
    _new_strategy(page, "Chart SMA")
    page.select_option("select[name=series]", f"test|{symbol}|1m")
    page.fill("input[name=count]", "300")
    page.fill("input[name='param.fast']", "5")
    page.fill("input[name='param.slow']", "20")
    page.click("#try-button")
    page.wait_for_selector(".try-chart[data-drawn='1']", timeout=30_000)
    assert page.locator(".try-chart canvas").count() > 0
    assert int(page.locator(".try-trades").inner_text()) > 0


def test_without_javascript_the_textarea_still_saves(browser, live_server, make_user):
    context = browser.new_context(base_url=live_server, java_script_enabled=False)
    page = context.new_page()
    try:
        user, password = make_user()
        page.goto("/login")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.goto("/strategies/new")
        page.fill("input[name=name]", "No JS")
        page.click("button:has-text('Create')")
        page.wait_for_selector("textarea#code")
        page.fill("textarea#code", BROKEN)
        page.click("#save-button")
        page.wait_for_selector(".flash.error")
        assert _latest(user.id, "No JS") == (2, BROKEN, False)
    finally:
        context.close()


@pytest.fixture()
def ai_live_server(infra):
    """The app over HTTP with the assistant pointed at a local OpenAI-compatible chat server."""
    import threading

    from werkzeug.serving import make_server

    from core.infra.config import get_settings
    from tests.integration.test_strategy_ai_journey import API_KEY, FORBIDDEN_ANSWER, VALID_ANSWER, ChatServer
    from tests.support import free_port
    from webapp import create_app

    chat = ChatServer([FORBIDDEN_ANSWER, VALID_ANSWER])
    settings = get_settings()
    secrets_ = settings.secrets.model_copy(update={"AI_BASE_URL": chat.url, "AI_API_KEY": API_KEY, "AI_MODEL": "m"})
    port = free_port()
    server = make_server(
        "127.0.0.1", port, create_app(settings.model_copy(update={"secrets": secrets_})), threaded=True
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    chat.close()


def test_ai_panel_inserts_only_validated_code_into_the_editor(browser, ai_live_server, make_user):
    from tests.integration.test_strategy_ai_journey import VALID_CODE

    context = browser.new_context(base_url=ai_live_server)
    page = context.new_page()
    try:
        user, password = make_user()
        page.goto("/login")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url("**/")
        _new_strategy(page, "From AI", template="Blank")
        page.fill(".chat-form textarea[name=message]", "Write a Bollinger breakout")
        page.click(".chat-form button[type=submit]")
        page.wait_for_selector(".assistant-code.bad")
        assert page.locator(".insert-code").count() == 0
        page.fill(".chat-form textarea[name=message]", "Without os please")
        page.click(".chat-form button[type=submit]")
        page.wait_for_selector(".insert-code")
        assert page.locator(".chat-message").count() == 4
        page.click(".insert-code")
        assert page.input_value("#code") == VALID_CODE
        assert "class AiBreakout" in page.locator(".cm-content").inner_text()
        page.click("#save-button")
        page.wait_for_selector(".flash.success")
        assert _latest(user.id, "From AI") == (2, VALID_CODE, True)
    finally:
        context.close()
