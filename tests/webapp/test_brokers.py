"""Brokers page over the Flask test client, with a real simulator behind "Test connection"/"Load markets"."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import func, select

from core.infra.db import session_scope
from core.models import BrokerConnection, SymbolRule
from tests.support import csrf_token_from, free_port, remember_secret


def _add(client, **fields):
    token = csrf_token_from(client.get("/brokers/").get_data(as_text=True))
    return client.post("/brokers/", data={"csrf_token": token, "venue": "sim", "label": "Paper"} | fields)


def _keys(sim, funded: bool = True):
    key, secret = remember_secret(f"key{secrets.token_hex(6)}"), remember_secret(f"sec-{secrets.token_urlsafe(16)}")
    if funded:
        sim.create_account(key, secret, {"USDT": "2500"})
    return key, secret


def _broker(user_id: int) -> BrokerConnection:
    with session_scope() as session:
        return session.scalar(select(BrokerConnection).where(BrokerConnection.user_id == user_id))


def test_trader_adds_connection_and_keys_are_never_shown_again(client, logged_in, sim):
    key, secret = _keys(sim)
    response = _add(client, api_key=key, api_secret=secret, base_url=sim.url)
    assert response.status_code == 302
    page = client.get("/brokers/").get_data(as_text=True)
    assert "Paper" in page and key not in page and secret not in page
    broker = _broker(logged_in.id)
    assert broker.api_key_enc != key and broker.credentials()["api_secret"] == secret
    edit = client.get(f"/brokers/{broker.id}/edit").get_data(as_text=True)
    assert key not in edit and secret not in edit


def test_test_connection_shows_balances(client, logged_in, sim):
    key, secret = _keys(sim)
    _add(client, api_key=key, api_secret=secret, base_url=sim.url)
    broker = _broker(logged_in.id)
    token = csrf_token_from(client.get("/brokers/").get_data(as_text=True))
    html = client.post(f"/brokers/{broker.id}/test", headers={"X-CSRFToken": token}).get_data(as_text=True)
    assert "connected" in html and "USDT" in html and "2500" in html


def test_wrong_api_key_shows_the_venue_error(client, logged_in, sim):
    key, secret = _keys(sim, funded=False)
    _add(client, api_key=key, api_secret=secret, base_url=sim.url)
    broker = _broker(logged_in.id)
    token = csrf_token_from(client.get("/brokers/").get_data(as_text=True))
    html = client.post(f"/brokers/{broker.id}/test", headers={"X-CSRFToken": token}).get_data(as_text=True)
    assert "auth" in html and "API-key" in html  # Binance's own message: "Invalid API-key, IP, or permissions"


def test_venue_down_shows_unreachable(client, logged_in, sim):
    key, secret = _keys(sim)
    _add(client, api_key=key, api_secret=secret, base_url=f"http://127.0.0.1:{free_port()}")
    broker = _broker(logged_in.id)
    token = csrf_token_from(client.get("/brokers/").get_data(as_text=True))
    html = client.post(f"/brokers/{broker.id}/test", headers={"X-CSRFToken": token}).get_data(as_text=True)
    assert "unavailable" in html and "cannot reach" in html


def test_load_markets_stores_symbols_and_rules(client, logged_in, sim):
    key, secret = _keys(sim)
    _add(client, api_key=key, api_secret=secret, base_url=sim.url)
    broker = _broker(logged_in.id)
    token = csrf_token_from(client.get("/brokers/").get_data(as_text=True))
    # The page's htmx button: no body, htmx follows HX-Redirect to the page that shows the flash.
    htmx = client.post(f"/brokers/{broker.id}/markets", data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"] == "/brokers/"
    assert "symbols loaded" in client.get("/brokers/").get_data(as_text=True)
    response = client.post(f"/brokers/{broker.id}/markets", data={"csrf_token": token}, follow_redirects=True)
    assert "symbols loaded" in response.get_data(as_text=True) and "HX-Redirect" not in response.headers
    with session_scope() as session:
        count = session.scalar(select(func.count()).select_from(SymbolRule).where(SymbolRule.broker_id == broker.id))
        btc = session.scalar(
            select(SymbolRule).where(SymbolRule.broker_id == broker.id, SymbolRule.symbol == "BTCUSDT")
        )
    assert count >= 3 and btc.rules["tick_size"] == "0.01" and btc.base == "BTC"


def test_bad_input_is_refused_with_a_message_and_nothing_saved(client, logged_in):
    missing = _add(client, api_key="", api_secret="")
    assert missing.status_code == 400 and "API key and secret are required" in missing.get_data(as_text=True)
    bad_url = _add(client, api_key="abcdefgh1234", api_secret="secretsecret", base_url="ftp://nowhere")
    assert bad_url.status_code == 400 and "base URL" in bad_url.get_data(as_text=True)
    bitget = _add(client, venue="bitget", api_key="abcdefgh1234", api_secret="secretsecret")
    assert "passphrase" in bitget.get_data(as_text=True)
    assert _broker(logged_in.id) is None


def test_edit_keeps_keys_when_left_blank_and_delete_removes(client, logged_in, sim):
    key, secret = _keys(sim)
    _add(client, api_key=key, api_secret=secret, base_url=sim.url)
    broker = _broker(logged_in.id)
    token = csrf_token_from(client.get(f"/brokers/{broker.id}/edit").get_data(as_text=True))
    response = client.post(
        f"/brokers/{broker.id}/edit",
        data={"csrf_token": token, "venue": "sim", "label": "Renamed", "base_url": sim.url},
    )
    assert response.status_code == 302
    renamed = _broker(logged_in.id)
    assert renamed.label == "Renamed" and renamed.credentials()["api_key"] == key
    client.post(f"/brokers/{broker.id}/delete", data={"csrf_token": token})
    assert _broker(logged_in.id) is None


def test_another_users_connection_is_not_found(client, make_user, login, sim):
    owner, password = make_user()
    login(owner.username, password)
    key, secret = _keys(sim)
    _add(client, api_key=key, api_secret=secret, base_url=sim.url)
    broker = _broker(owner.id)
    intruder, intruder_password = make_user()
    client.post("/logout", data={"csrf_token": csrf_token_from(client.get("/brokers/").get_data(as_text=True))})
    login(intruder.username, intruder_password)
    assert client.get(f"/brokers/{broker.id}/edit").status_code == 404


@pytest.fixture(scope="module")
def hostile_venue():
    """A real HTTP server playing a venue that answers every request with an abusive error or a redirect."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            if self.path.startswith("/moved"):
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps({"code": -2015, "msg": HOSTILE_MESSAGE}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


HOSTILE_MESSAGE = "<script>alert(document.cookie)</script>\x1b[2J\u202eevil\r\nX-Injected: 1 " + "A" * 5000


def _test_connection(client, broker_id: int) -> str:
    token = csrf_token_from(client.get("/brokers/").get_data(as_text=True))
    return client.post(f"/brokers/{broker_id}/test", headers={"X-CSRFToken": token}).get_data(as_text=True)


def test_a_venue_error_is_shown_bounded_escaped_and_printable(client, logged_in, hostile_venue):
    assert (
        _add(
            client, venue="binance", api_key="abcdefgh1234", api_secret="secretsecret", base_url=hostile_venue
        ).status_code
        == 302
    )
    html = _test_connection(client, _broker(logged_in.id).id)
    assert "&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "\x1b" not in html and "\u202e" not in html and "\r\nX-Injected" not in html
    assert "A" * 290 not in html and "A" * 200 in html  # cut at 300 characters


def test_a_venue_redirect_is_not_followed(client, logged_in, hostile_venue):
    _add(client, venue="binance", api_key="abcdefgh1234", api_secret="secretsecret", base_url=f"{hostile_venue}/moved")
    html = _test_connection(client, _broker(logged_in.id).id)
    assert "unavailable" in html and "TooManyRedirects" in html


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254",
        "http://10.0.0.8:8080",
        "http://[::1]:6379",
        "http://0.0.0.0:5432",
        "http://192.168.0.1",
    ],
)
def test_a_base_url_on_a_private_network_is_refused_at_save(client, logged_in, url):
    response = _add(client, api_key="abcdefgh1234", api_secret="secretsecret", base_url=url)
    assert response.status_code == 400
    assert "base URL refused" in response.get_data(as_text=True) and "config.yaml" in response.get_data(as_text=True)
    assert _broker(logged_in.id) is None


def test_a_private_base_url_saved_before_is_refused_before_the_request(client, logged_in):
    """A row written before the check existed (or by hand) still never reaches the address."""
    _add(client, api_key="abcdefgh1234", api_secret="secretsecret", base_url="https://1.1.1.1")
    broker = _broker(logged_in.id)
    with session_scope() as session:
        session.get(BrokerConnection, broker.id).base_url = "http://169.254.169.254"
    html = _test_connection(client, broker.id)
    assert "base URL refused" in html
