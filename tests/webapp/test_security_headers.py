"""Every response carries the browser guards; no template carries an inline script or event handler."""

from __future__ import annotations

import re

from tests.support import csrf_token_from
from webapp import ROOT

PAGES = [
    "/",
    "/trading/",
    "/brokers/",
    "/strategies/",
    "/backtests/",
    "/statistics/",
    "/heartbeat/",
    "/webhooks/",
    "/bots/",
    "/marketdata/",
    "/account/password",
]


def _assert_guarded(response) -> None:
    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_every_kind_of_response_carries_the_headers(client, logged_in):
    for path in PAGES:
        response = client.get(path)
        assert response.status_code in (200, 302), path
        _assert_guarded(response)
    _assert_guarded(client.get("/no-such-page"))
    _assert_guarded(client.get("/static/js/ui.js"))
    _assert_guarded(client.get("/healthz"))


def test_login_page_and_redirects_carry_them_too(client, infra):
    _assert_guarded(client.get("/login"))
    _assert_guarded(client.get("/"))


def test_no_template_has_an_inline_script_or_handler():
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
    handler = re.compile(r"\son[a-z]+\s*=|\bhx-on\b|javascript:", re.I)
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        assert not inline_script.search(text), f"inline <script> in {template}"
        assert not handler.search(text), f"inline event handler in {template}"


def test_cookies_are_secure_when_the_request_came_over_https(client, make_user, login):
    user, password = make_user()
    token = csrf_token_from(client.get("/login", base_url="https://localhost").get_data(as_text=True))
    response = client.post(
        "/login",
        base_url="https://localhost",
        headers={"Referer": "https://localhost/login"},
        data={"username": user.username, "password": password, "remember": "y", "csrf_token": token},
    )
    cookies = response.headers.getlist("Set-Cookie")
    assert response.status_code == 302 and any(c.startswith("remember_token=") for c in cookies)
    assert all("; Secure" in c for c in cookies)
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_cookies_over_plain_http_follow_the_config_flag(client, make_user, login):
    user, password = make_user()
    response = login(user.username, password)
    assert not any("Secure" in c for c in response.headers.getlist("Set-Cookie"))  # web.session_cookie_secure: false
    assert "Strict-Transport-Security" not in response.headers
