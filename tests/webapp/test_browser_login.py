"""Journey in a real browser: sign in, see the navigation, reach the password page, sign out."""

import pytest

pytestmark = pytest.mark.browser


def test_login_navigation_and_logout_in_chromium(page, browser_login):
    user, _ = browser_login()
    assert page.locator("h1").inner_text() == f"Welcome, {user.username}"
    assert page.locator("header.topbar").is_visible()
    assert page.evaluate("typeof htmx") == "object"  # vendored htmx loaded, no CDN
    page.click(f"text={user.username}")
    page.wait_for_url("**/account/password")
    page.click("text=Sign out")
    page.wait_for_url("**/login")
    assert page.locator("text=Signed out.").is_visible()


def test_wrong_password_message_in_chromium(page, make_user):
    user, _ = make_user()
    page.goto("/login")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "definitely-wrong")
    page.click("button[type=submit]")
    assert page.locator(".flash.error").inner_text() == "Wrong username or password."


def test_vendored_scripts_load_without_console_errors(page, browser_login):
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type in ("error", "warning") else None)
    browser_login()
    page.reload()
    page.wait_for_load_state("networkidle")
    assert errors == []
