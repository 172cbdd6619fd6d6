"""The strategy store against the real Postgres: versions kept as typed, params typed, diff/restore, candles."""

from __future__ import annotations

import secrets
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.infra.db import session_scope
from core.models.candles import Candle
from core.strategies import store
from core.strategies.contract import format_candle_time
from core.strategies.sandbox import SandboxError, SandboxLimits
from core.strategies.templates import list_templates

SYNTAX_ERROR = "from core.strategies import Strategy\n\nclass Broken(Strategy)\n    pass\n"
FORBIDDEN = "import os\nfrom core.strategies import Strategy\n\n\nclass Sneaky(Strategy):\n    pass\n"
RAISES_AT_500 = """from core.strategies import Strategy


class LateFailure(Strategy):
    def should_long(self):
        if len(self.data.close) == 500:
            raise ValueError("boom at 500")
        return False
"""


@pytest.fixture()
def user(make_user):
    return make_user()[0]


def _sma(session, user, name=None):
    return store.create_strategy(session, user.id, name or f"s-{secrets.token_hex(3)}", template="sma_cross")


def test_every_template_creates_a_valid_first_version(db_session, user):
    for template in list_templates():
        strategy = store.create_strategy(db_session, user.id, template.title, template=template.name)
        version = strategy.latest
        assert (version.number, version.valid, version.errors) == (1, True, [])
        assert version.code == template.code
        assert version.note == f"from template {template.title}"
    assert [s.name for s in store.list_strategies(db_session, user.id)] == sorted(t.title for t in list_templates())


def test_blank_strategy_validates(db_session, user):
    strategy = store.create_strategy(db_session, user.id, "Blank")
    assert strategy.latest.valid and strategy.latest.class_name == "MyStrategy"


def test_names_are_unique_per_user_and_cleaned(db_session, user, make_user):
    store.create_strategy(db_session, user.id, "  My   SMA ")
    with pytest.raises(store.StrategyStoreError, match="already have a strategy named 'My SMA'"):
        store.create_strategy(db_session, user.id, "My SMA")
    other = make_user()[0]
    assert store.create_strategy(db_session, other.id, "My SMA").name == "My SMA"
    for bad in ("", "   ", "x" * 81):
        with pytest.raises(store.StrategyStoreError):
            store.create_strategy(db_session, user.id, bad)
    with pytest.raises(store.StrategyStoreError, match="unknown strategy template 'nope'"):
        store.create_strategy(db_session, user.id, "T", template="nope")


def test_invalid_code_is_kept_exactly_as_typed_with_its_errors(db_session, user):
    strategy = _sma(db_session, user)
    for code, needle, line in ((SYNTAX_ERROR, "syntax error", 3), (FORBIDDEN, "'os'", 1)):
        version = store.save_version(db_session, strategy, code)
        assert version.code == code and not version.valid
        assert version.errors[0]["line"] == line and needle in version.errors[0]["message"]
    with pytest.raises(store.StrategyStoreError, match="NUL character"):
        store.save_version(db_session, strategy, "x = 1\x00")
    db_session.expire_all()
    reloaded = store.get_strategy(db_session, user.id, strategy.id)
    assert [v.number for v in reloaded.versions] == [1, 2, 3]
    assert reloaded.latest.code == FORBIDDEN


def test_another_users_strategy_is_not_found(db_session, user, make_user):
    strategy = _sma(db_session, user)
    intruder = make_user()[0]
    with pytest.raises(store.StrategyNotFound):
        store.get_strategy(db_session, intruder.id, strategy.id)
    with pytest.raises(store.StrategyNotFound):
        store.get_strategy(db_session, user.id, 10**9)


def test_params_are_typed_against_the_class_defaults(db_session, user):
    strategy = _sma(db_session, user)
    version = store.update_params(db_session, strategy, {"fast": "12"})
    assert version.number == 2 and version.params == {"fast": 12} and version.code == strategy.versions[0].code
    assert store.effective_params(version) == {"fast": 12, "slow": 30}
    with pytest.raises(store.StrategyParamsInvalid) as bad:
        store.update_params(db_session, strategy, {"fast": "twelve", "slow": "1.5"})
    assert set(bad.value.field_errors) == {"fast", "slow"}
    assert "must be an integer" in bad.value.field_errors["fast"]
    with pytest.raises(store.StrategyParamsInvalid, match="unknown parameter"):
        store.update_params(db_session, strategy, {"nope": 1})
    assert strategy.latest.number == 2  # refused changes stored nothing


def test_params_survive_code_edits_that_keep_them(db_session, user):
    strategy = _sma(db_session, user)
    store.update_params(db_session, strategy, {"fast": 8, "slow": 21})
    edited = strategy.latest.code.replace('"slow": 30', '"slower": 30').replace('params["slow"]', 'params["slower"]')
    version = store.save_version(db_session, strategy, edited)
    assert version.valid and version.params == {"fast": 8}
    invalid = store.save_version(db_session, strategy, SYNTAX_ERROR)
    assert invalid.params == {"fast": 8}  # nothing to check them against: kept unchanged


def test_restore_makes_a_new_version_and_diff_shows_changes(db_session, user):
    strategy = _sma(db_session, user)
    store.save_version(db_session, strategy, SYNTAX_ERROR, note="oops")
    restored = store.restore_version(db_session, strategy, 1)
    assert (restored.number, restored.code, restored.valid) == (3, strategy.versions[0].code, True)
    assert restored.note == "restored from v1"
    diff = store.diff_versions(strategy, 1, 2)
    assert diff.startswith("--- v1\n+++ v2\n")
    assert "+class Broken(Strategy)\n" in diff and "-class SmaCross(Strategy):\n" in diff
    assert store.diff_versions(strategy, 1, 3) == ""
    with pytest.raises(store.StrategyNotFound, match="no version 9"):
        store.restore_version(db_session, strategy, 9)


def test_delete_removes_strategy_and_versions(db_session, user):
    strategy = _sma(db_session, user)
    strategy_id = strategy.id
    store.delete_strategy(db_session, strategy)
    with pytest.raises(store.StrategyNotFound):
        store.get_strategy(db_session, user.id, strategy_id)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=300))
def test_any_text_is_stored_unchanged(make_user_once, text):
    with session_scope() as session:
        strategy = store.get_strategy(session, make_user_once.id, make_user_once.strategy_id)
        version = store.save_version(session, strategy, text)
        number = version.number
    with session_scope() as session:
        strategy = store.get_strategy(session, make_user_once.id, make_user_once.strategy_id)
        assert store.get_version(strategy, number).code == text


def test_a_lone_surrogate_is_refused_with_its_line(make_user_once):
    with session_scope() as session, pytest.raises(store.StrategyStoreError, match="line 2 holds a character"):
        strategy = store.get_strategy(session, make_user_once.id, make_user_once.strategy_id)
        store.save_version(session, strategy, "x = 1\ny = '\ud800'\n")


@pytest.fixture()
def make_user_once(make_user):
    user = make_user()[0]
    with session_scope() as session:
        user.strategy_id = store.create_strategy(session, user.id, "prop").id
    return user


# --------------------------------------------------------------------------- candles + sandbox


def _store_candles(session, symbol: str, count: int, start_ms: int = 1_700_000_000_000):
    for i in range(count):
        price = Decimal(100 + (i % 40) - 20 * ((i // 40) % 2))
        session.merge(
            Candle(
                venue="test",
                symbol=symbol,
                timeframe="1m",
                open_time=start_ms + i * 60_000,
                open=price,
                high=price + 1,
                low=price - 1,
                close=price,
                volume=Decimal("1.5"),
            )
        )
    session.flush()


def test_recent_candles_oldest_first_and_clear_message_without_any(db_session):
    symbol = f"T{secrets.token_hex(3).upper()}"
    with pytest.raises(store.NoCandles, match=f"no 1m candles of {symbol} on test"):
        store.recent_candles(db_session, "test", symbol, "1m", 100)
    _store_candles(db_session, symbol, 50)
    rows = store.recent_candles(db_session, "test", symbol, "1m", 20)
    assert len(rows) == 20 and rows[0][0] < rows[-1][0]
    assert rows[-1][0] == 1_700_000_000_000 + 49 * 60_000
    series = {s.key: s for s in store.candle_series(db_session)}
    assert series[f"test|{symbol}|1m"].count == 50
    for bad in (0, 1, store.MAX_TRY_CANDLES + 1):
        with pytest.raises(store.StrategyStoreError, match="between 2 and"):
            store.recent_candles(db_session, "test", symbol, "1m", bad)


def test_try_on_candles_returns_entries_and_exits(db_session):
    symbol = f"T{secrets.token_hex(3).upper()}"
    _store_candles(db_session, symbol, 300)
    rows = store.recent_candles(db_session, "test", symbol, "1m", 300)
    from core.strategies.templates import get_template

    result = store.try_on_candles(get_template("sma_cross").code, {"fast": 5, "slow": 15}, rows)
    assert result.trades > 0
    kinds = [s["kind"] for s in result.signals]
    assert kinds[0] == "entry" and "exit" in kinds
    times = [s["time"] for s in result.signals]
    assert times == sorted(times) and set(times) <= {r[0] for r in rows}
    assert result.summary["candles"] == 300


def test_try_on_candles_reports_the_failing_candle(db_session):
    symbol = f"T{secrets.token_hex(3).upper()}"
    _store_candles(db_session, symbol, 600)
    rows = store.recent_candles(db_session, "test", symbol, "1m", 600)
    with pytest.raises(SandboxError) as failure:
        store.try_on_candles(RAISES_AT_500, {}, rows, limits=SandboxLimits(cpu_seconds=5, wall_seconds=10))
    assert "boom at 500" in failure.value.error["message"]
    assert failure.value.error["line"] == 7
    assert failure.value.error["candle_time"] == format_candle_time(rows[499][0])  # the 500th candle
