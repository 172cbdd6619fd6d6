"""Strategies pages through the Flask test client on the real database and the real sandbox."""

from __future__ import annotations

import html
import re
import secrets
from decimal import Decimal

import pytest
from bs4 import BeautifulSoup

from core.infra.db import new_session, session_scope
from core.models.candles import Candle
from core.strategies import store
from core.strategies.sandbox import SandboxLimits
from core.strategies.templates import get_template
from tests.support import csrf_token_from

HEADER = "from core.strategies import Strategy\n\n\n"
BAD_INPUTS = {
    "syntax error": (HEADER + "class Broken(Strategy)\n    pass\n", "line 4", "syntax error"),
    "forbidden code": ("import os\n" + HEADER + "class Sneaky(Strategy):\n    pass\n", "line 1", "&#39;os&#39;"),
    "megabytes printed": (
        HEADER + "class Loud(Strategy):\n    def should_long(self):\n        print('x' * 10 ** 7)\n",
        "line 6",
        "print() output goes nowhere",
    ),
}
RUNTIME_BAD = {
    "NaN size": (
        "    def should_long(self):\n        return True\n\n"
        "    def position_size(self):\n        return float('nan')\n",
        "position_size",
    ),
    "negative price": (
        "    def should_long(self):\n        return True\n\n    def stop_loss(self):\n        return -5.0\n",
        "stop_loss",
    ),
    "wrong type": ("    def should_long(self):\n        return 'yes'\n", "should_long"),
    "NaN stop": (
        "    def should_long(self):\n        return True\n\n    def stop_loss(self):\n        return float('nan')\n",
        "stop_loss",
    ),
    "endless recursion": ("    def should_long(self):\n        return self.should_long()\n", "recursed too deeply"),
    "raises on the 500th candle": (
        "    def should_long(self):\n        if len(self.data.close) == 500:\n"
        "            raise ValueError('boom at candle 500')\n        return False\n",
        "boom at candle 500",
    ),
}
NEVER_RETURNS = HEADER + "class Forever(Strategy):\n    def should_long(self):\n        while True:\n            pass\n"


@pytest.fixture(autouse=True)
def _fresh_login_budget(infra):
    """Each test signs in again from 127.0.0.1: clear only the rate-limit counters (10 logins/min/IP)."""
    from core.infra.bus import get_redis

    redis = get_redis()
    for key in redis.scan_iter("*LIMITER*"):
        redis.delete(key)


def _token(client, url="/strategies/new") -> str:
    return csrf_token_from(client.get(url).get_data(as_text=True))


def _create(client, name=None, template="sma_cross") -> int:
    name = name or f"S {secrets.token_hex(3)}"
    response = client.post("/strategies/new", data={"name": name, "template": template, "csrf_token": _token(client)})
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(re.search(r"/strategies/(\d+)$", response.headers["Location"]).group(1))


def _latest(strategy_id: int, user_id: int):
    with new_session() as session:
        strategy = store.get_strategy(session, user_id, strategy_id)
        version = strategy.latest
        return version.number, version.code, version.valid, dict(version.params)


@pytest.fixture(scope="module")
def candle_series(infra):
    """600 one-minute candles of a zigzag market under a fresh symbol."""
    symbol = f"ZZ{secrets.token_hex(2).upper()}"
    with session_scope() as session:
        for i in range(600):
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
    return f"test|{symbol}|1m"


def test_create_from_template_and_open_the_editor(client, logged_in):
    page = client.get("/strategies/new").get_data(as_text=True)
    for title in ("SMA cross", "RSI mean reversion", "Bollinger breakout", "MACD trend"):
        assert title in page
    strategy_id = _create(client, "My RSI", "rsi_mean_reversion")
    editor = client.get(f"/strategies/{strategy_id}").get_data(as_text=True)
    assert "My RSI" in editor and "codemirror-6.bundle.js" in editor
    code = html.unescape(re.search(r'<textarea name="code" id="code"[^>]*>(.*?)</textarea>', editor, re.S).group(1))
    assert code == get_template("rsi_mean_reversion").code  # the no-JS fallback carries the code
    assert 'name="param.' in editor
    assert "My RSI" in client.get("/strategies/").get_data(as_text=True)


def test_duplicate_or_empty_name_is_refused_and_keeps_the_form(client, logged_in):
    _create(client, "Twice")
    response = client.post(
        "/strategies/new", data={"name": "Twice", "template": "macd_trend", "csrf_token": _token(client)}
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "already have a strategy named" in page and 'value="Twice"' in page
    response = client.post("/strategies/new", data={"name": " ", "template": "", "csrf_token": _token(client)})
    assert response.status_code == 400 and "needs a name" in response.get_data(as_text=True)


def test_another_traders_strategy_is_404_everywhere(client, logged_in, make_user, login, app):
    strategy_id = _create(client)
    other = app.test_client()
    user, password = make_user()
    login(user.username, password, test_client=other)
    token = _token(other)
    assert other.get(f"/strategies/{strategy_id}").status_code == 404
    assert other.get(f"/strategies/{strategy_id}/diff?a=1&b=1").status_code == 404
    for action in ("save", "validate", "try", "assistant", "delete", "restore/1"):
        response = other.post(f"/strategies/{strategy_id}/{action}", data={"code": "x", "csrf_token": token})
        assert response.status_code == 404, action
    assert _latest(strategy_id, logged_in.id)[0] == 1  # untouched
    assert f'href="/strategies/{strategy_id}"' not in other.get("/strategies/").get_data(as_text=True)
    assert f'href="/strategies/{strategy_id}"' in client.get("/strategies/").get_data(as_text=True)


def test_post_without_csrf_token_is_refused(client, logged_in):
    strategy_id = _create(client)
    assert client.post(f"/strategies/{strategy_id}/save", data={"code": "x = 1"}).status_code == 400
    assert _latest(strategy_id, logged_in.id)[0] == 1


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_code_validates_with_line_and_is_saved_as_typed(client, logged_in, case):
    code, line, needle = BAD_INPUTS[case]
    strategy_id = _create(client)
    token = _token(client, f"/strategies/{strategy_id}")
    fragment = client.post(f"/strategies/{strategy_id}/validate", data={"code": code, "csrf_token": token})
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and line in text and needle in text and "pill bad" in text
    saved = client.post(f"/strategies/{strategy_id}/save", data={"code": code, "csrf_token": token})
    assert saved.status_code == 302
    assert _latest(strategy_id, logged_in.id)[1:3] == (code, False)
    editor = client.get(f"/strategies/{strategy_id}").get_data(as_text=True)
    assert "does not validate" in editor and html.escape(code.splitlines()[0]) in editor


def test_save_with_typed_params_and_bad_param_keeps_everything_typed(client, logged_in):
    strategy_id = _create(client)
    token = _token(client, f"/strategies/{strategy_id}")
    code = get_template("sma_cross").code.replace("# ", "#  ")
    form = {
        "code": code,
        "csrf_token": token,
        "param.fast": "12",
        "default.fast": "10",
        "param.slow": "30",
        "default.slow": "30",
        "note": "faster",
    }
    assert client.post(f"/strategies/{strategy_id}/save", data=form).status_code == 302
    assert _latest(strategy_id, logged_in.id) == (2, code, True, {"fast": 12})
    bad = dict(form, **{"param.fast": "twelve", "code": code + "\n# typed after\n"})
    response = client.post(f"/strategies/{strategy_id}/save", data=bad)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "must be an integer" in page
    assert "# typed after" in page and 'value="twelve"' in page  # nothing the trader typed is lost
    assert _latest(strategy_id, logged_in.id)[0] == 2


def test_versions_diff_and_restore(client, logged_in):
    strategy_id = _create(client)
    token = _token(client, f"/strategies/{strategy_id}")
    original = _latest(strategy_id, logged_in.id)[1]
    changed = original.replace("SmaCross", "SmaCrossEdited")
    client.post(f"/strategies/{strategy_id}/save", data={"code": changed, "csrf_token": token})
    diff = client.get(f"/strategies/{strategy_id}/diff?a=1&b=2").get_data(as_text=True)
    assert "-class SmaCross(Strategy):" in diff and "+class SmaCrossEdited(Strategy):" in diff
    assert client.get(f"/strategies/{strategy_id}/diff?a=1&b=9").status_code == 404
    response = client.post(f"/strategies/{strategy_id}/restore/1", data={"csrf_token": token})
    assert response.status_code == 302
    assert _latest(strategy_id, logged_in.id)[:3] == (3, original, True)
    assert "restored from v1" in client.get(f"/strategies/{strategy_id}").get_data(as_text=True)
    assert client.post(f"/strategies/{strategy_id}/restore/42", data={"csrf_token": token}).status_code == 404


def test_delete_strategy(client, logged_in):
    strategy_id = _create(client)
    token = _token(client, f"/strategies/{strategy_id}")
    assert client.post(f"/strategies/{strategy_id}/delete", data={"csrf_token": token}).status_code == 302
    assert client.get(f"/strategies/{strategy_id}").status_code == 404


def test_try_on_candles_shows_signals_for_the_chart(client, logged_in, candle_series):
    strategy_id = _create(client)
    token = _token(client, f"/strategies/{strategy_id}")
    editor = client.get(f"/strategies/{strategy_id}").get_data(as_text=True)
    assert candle_series in editor
    code = _latest(strategy_id, logged_in.id)[1]
    form = {
        "code": code,
        "csrf_token": token,
        "series": candle_series,
        "count": "400",
        "param.fast": "5",
        "default.fast": "10",
        "param.slow": "20",
        "default.slow": "30",
    }
    text = client.post(f"/strategies/{strategy_id}/try", data=form).get_data(as_text=True)
    assert "400 candles" in text and "data-chart=" in text
    trades = int(re.search(r'class="try-trades">(\d+)<', text).group(1))
    assert trades > 0 and text.count("entry long") == trades


def test_try_without_stored_candles_explains_how_to_get_them(client, logged_in):
    strategy_id = _create(client)
    token = _token(client, f"/strategies/{strategy_id}")
    code = _latest(strategy_id, logged_in.id)[1]
    text = client.post(
        f"/strategies/{strategy_id}/try",
        data={"code": code, "csrf_token": token, "series": "test|NOPE|1m", "count": "100"},
    ).get_data(as_text=True)
    assert "no 1m candles of NOPE on test are stored yet" in text and "aristobot candles import" in text
    text = client.post(
        f"/strategies/{strategy_id}/try",
        data={"code": code, "csrf_token": token, "series": "test|NOPE|1m", "count": "many"},
    ).get_data(as_text=True)
    assert "whole number" in text


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_try_refuses_code_that_does_not_validate(client, logged_in, candle_series, case):
    code, line, _ = BAD_INPUTS[case]
    strategy_id = _create(client)
    token = _token(client, f"/strategies/{strategy_id}")
    text = client.post(
        f"/strategies/{strategy_id}/try",
        data={"code": code, "csrf_token": token, "series": candle_series, "count": "50"},
    ).get_data(as_text=True)
    assert "does not validate" in text and line in text


@pytest.mark.parametrize("case", sorted(RUNTIME_BAD))
def test_strategy_answering_nonsense_gives_a_clear_error_and_loses_nothing(client, logged_in, candle_series, case):
    body, needle = RUNTIME_BAD[case]
    code = HEADER + "class Nonsense(Strategy):\n" + body
    strategy_id = _create(client)
    token = _token(client, f"/strategies/{strategy_id}")
    assert client.post(f"/strategies/{strategy_id}/save", data={"code": code, "csrf_token": token}).status_code == 302
    text = client.post(
        f"/strategies/{strategy_id}/try",
        data={"code": code, "csrf_token": token, "series": candle_series, "count": "600"},
    ).get_data(as_text=True)
    assert "The strategy failed" in text and needle in html.unescape(text)
    assert "at candle" in text
    assert _latest(strategy_id, logged_in.id)[1:3] == (code, True)


def test_strategy_that_never_returns_is_stopped(client, logged_in, candle_series, app):
    app.config["STRATEGY_TRY_LIMITS"] = SandboxLimits(cpu_seconds=2, wall_seconds=4)
    strategy_id = _create(client)
    token = _token(client, f"/strategies/{strategy_id}")
    text = client.post(
        f"/strategies/{strategy_id}/try",
        data={"code": NEVER_RETURNS, "csrf_token": token, "series": candle_series, "count": "50"},
    ).get_data(as_text=True)
    assert "The strategy failed" in text
    assert re.search(r"CPU time|did not finish|time limit", text), text
    # the page still works and the typed code can be saved
    client.post(f"/strategies/{strategy_id}/save", data={"code": NEVER_RETURNS, "csrf_token": token})
    assert _latest(strategy_id, logged_in.id)[1] == NEVER_RETURNS


def test_assistant_panel_without_endpoint_explains_configuration(client, logged_in):
    strategy_id = _create(client)
    editor = client.get(f"/strategies/{strategy_id}").get_data(as_text=True)
    for name in ("AI_BASE_URL", "AI_API_KEY", "AI_MODEL"):
        assert name in editor
    token = _token(client, f"/strategies/{strategy_id}")
    text = client.post(
        f"/strategies/{strategy_id}/assistant", data={"message": "write one", "history": "[]", "csrf_token": token}
    ).get_data(as_text=True)
    assert "not configured" in text and "AI_MODEL" in text
    for page in (editor, text):  # the whole setup: the settings, an example, the network rule, where the key lives
        panel = BeautifulSoup(page, "html.parser").find(id="assistant-setup")
        rows = {row["data-key"]: row.get_text(" ", strip=True) for row in panel.select("tr[data-key]")}
        assert "required not set" in rows["AI_BASE_URL"] and "required not set" in rows["AI_MODEL"]
        assert "optional not set" in rows["AI_API_KEY"]
        words = panel.get_text(" ", strip=True)
        assert "AI_BASE_URL=http://127.0.0.1:11434" in words and "allowed_networks" in words
        assert "never sent to the browser" in words and "encrypted with FERNET_KEYS" in words


def _burst(client, path: str, data: dict, count: int) -> list:
    return [client.post(path, data=data, headers={"HX-Request": "true"}) for _ in range(count)]


@pytest.mark.parametrize("action", ["try", "assistant"])
def test_expensive_actions_are_limited_per_trader_with_the_reason_in_place(
    app, client, logged_in, make_user, login, action
):
    strategy_id = _create(client)
    data = {"code": "x = (", "message": "", "csrf_token": _token(client, f"/strategies/{strategy_id}")}
    path = f"/strategies/{strategy_id}/{action}"
    assert [r.status_code for r in _burst(client, path, data, 10)] == [200] * 10
    refused = _burst(client, path, data, 1)[0]
    text = refused.get_data(as_text=True)
    assert refused.status_code == 429 and "Too many requests" in text and "10 per 1 minute" in text
    assert "<html" not in text  # a fragment for the panel, not a whole page
    other = app.test_client()
    trader, password = make_user()
    login(trader.username, password, test_client=other)
    theirs = _create(other)
    token = _token(other, f"/strategies/{theirs}")
    response = other.post(f"/strategies/{theirs}/{action}", data=data | {"csrf_token": token})
    assert response.status_code == 200  # another trader's budget is their own
