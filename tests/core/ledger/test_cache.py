"""The kept ledger over a real Postgres: a view is reused while nothing changed, rebuilt after a new fill
or a renamed bot, kept per trader (two traders never share one) and per end of range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from core.infra.db import new_session, session_scope
from core.ledger import cache
from core.ledger.cache import forget, ledger_view, rebuild
from core.ledger.report import plain, report_of_books
from core.models import Bot
from tests.ledger_support import Ledger

DAY1 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


def realised(user_id: int, until: datetime | None = None) -> str:
    with new_session() as session:
        view = ledger_view(session, user_id, until)
    fills, books = view.select(lambda fill: True)
    [total] = report_of_books(fills, books).totals
    return plain(total.realised)


def test_a_view_is_reused_until_a_fill_arrives_then_the_new_fill_counts(make_user):
    user, _ = make_user()
    ledger = Ledger(user.id)
    desk = ledger.broker("Desk")
    ledger.trade(desk, "buy", "1", "100", DAY1)
    ledger.trade(desk, "sell", "1", "110", DAY2)
    with new_session() as session:
        first = ledger_view(session, user.id)
        assert ledger_view(session, user.id) is first and len(first.fills) == 2
    assert realised(user.id) == "10"
    ledger.trade(desk, "buy", "1", "100", DAY2 + timedelta(hours=1))
    ledger.trade(desk, "sell", "1", "130", DAY2 + timedelta(hours=2))
    with new_session() as session:
        again = ledger_view(session, user.id)
    assert again is not first and len(again.fills) == 4
    assert realised(user.id) == "40"
    forget(user.id)
    with new_session() as session:
        assert ledger_view(session, user.id) is not again


def test_two_traders_never_share_a_view(make_user):
    (a, _), (b, _) = make_user(), make_user()
    ledger_a, ledger_b = Ledger(a.id), Ledger(b.id)
    desk_a, desk_b = ledger_a.broker("A desk"), ledger_b.broker("B desk")
    ledger_a.trade(desk_a, "buy", "1", "100", DAY1)
    ledger_a.trade(desk_a, "sell", "1", "105", DAY2)
    ledger_b.trade(desk_b, "buy", "2", "100", DAY1)
    ledger_b.trade(desk_b, "sell", "2", "90", DAY2)
    assert (realised(a.id), realised(b.id)) == ("5", "-20")
    with new_session() as session:
        view_a, view_b = ledger_view(session, a.id), ledger_view(session, b.id)
    assert {f.broker_id for f in view_a.fills} == {desk_a} and {f.broker_id for f in view_b.fills} == {desk_b}
    assert (realised(a.id), realised(b.id)) == ("5", "-20")  # each from its own kept view


def test_a_view_is_kept_per_end_of_range_and_a_renamed_bot_is_titled_anew(make_user):
    user, _ = make_user()
    ledger = Ledger(user.id)
    desk = ledger.broker("Desk")
    bot = ledger.bot(desk, "trend-rider")
    ledger.trade(desk, "buy", "1", "100", DAY1, source="bot", source_ref=bot)
    ledger.trade(desk, "sell", "1", "120", DAY2, source="bot", source_ref=bot)
    assert (realised(user.id), realised(user.id, DAY2)) == ("20", "0")  # the sale is after DAY2 starts
    with new_session() as session:
        [book] = ledger_view(session, user.id).books.values()
    assert book.source.title == "Bot · trend-rider"
    with session_scope() as session:
        session.execute(update(Bot).where(Bot.id == int(bot)).values(name="mean-reverter"))
    with new_session() as session:
        [book] = ledger_view(session, user.id).books.values()
    assert book.source.title == "Bot · mean-reverter"


def test_new_fills_match_only_the_books_they_touch_and_give_what_a_rebuild_gives(make_user):
    user, _ = make_user()
    ledger = Ledger(user.id)
    desk, other = ledger.broker("Desk"), ledger.broker("Other")
    ledger.trade(desk, "buy", "1", "100", DAY1)
    ledger.trade(other, "buy", "2", "50", DAY1)
    with new_session() as session:
        first = ledger_view(session, user.id)
    ledger.trade(desk, "sell", "1", "110", DAY2)
    ledger.trade(desk, "buy", "1", "90", DAY1 - timedelta(days=1))  # traded before the book's first fill
    with new_session() as session:
        extended = ledger_view(session, user.id)
        rebuilt, _ = rebuild(session, user.id, None)
    untouched = (other, "BTCUSDT", "manual")
    assert extended.books[untouched] is first.books[untouched]  # not matched again
    assert extended.watermark == rebuilt.watermark and len(extended.fills) == 4
    for key, book in rebuilt.books.items():
        assert extended.books[key].closings == book.closings and extended.books[key].lots == book.lots
        assert [f.fill_id for f in extended.usable[key]] == [f.fill_id for f in rebuilt.usable[key]]
    assert [f.fill_id for f in extended.fills_of(lambda fill: True)] == [f.fill_id for f in rebuilt.fills]
    assert realised(user.id) == "20"  # the older buy at 90 is the lot the sale at 110 closes (FIFO)


def test_the_least_recently_read_views_go_first_when_too_many_fills_are_kept(make_user, monkeypatch):
    monkeypatch.setattr(cache, "KEPT_FILLS", 3)
    (a, _), (b, _) = make_user(), make_user()
    for user in (a, b):
        ledger = Ledger(user.id)
        desk = ledger.broker("Desk")
        ledger.trade(desk, "buy", "1", "100", DAY1)
        ledger.trade(desk, "sell", "1", "101", DAY2)
    with new_session() as session:
        view_a = ledger_view(session, a.id)
        view_b = ledger_view(session, b.id)  # 4 fills kept: a's view goes
        assert ledger_view(session, b.id) is view_b
        assert ledger_view(session, a.id) is not view_a
