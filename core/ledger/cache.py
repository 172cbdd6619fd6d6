"""A trader's ledger matched once and kept: the Statistics page filters whole books (broker × symbol ×
source) and a period, so its views read the books of one matching instead of matching 200,000 fills
again per view.

A view is kept per (user id, end of the range) in this process, with the *watermark* it was built
from: the user's fills (highest id, count, how many have an order) and the names of their bots and
webhooks (the sources' titles). Every read asks the database for the watermark first (one small
query) and rebuilds when it moved: a new fill, a deleted order, a renamed bot. It is read before the
fills are loaded, so a view never holds less than its watermark says. The key holds the user id and
the fills are loaded for that user only: a view is never another trader's.
"""

from __future__ import annotations

import gc
import threading
import time
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter

from sqlalchemy import func, literal, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from core.ledger.entries import Classified, IncompleteFill, LedgerFill, incomplete_reason, ledger_problem
from core.ledger.fifo import Book, BookKey, one_book, round_trips
from core.ledger.loading import load_ledger
from core.ledger.report import Range
from core.models import Bot, Fill, Webhook

ALL_TIME = Range()
KEPT_VIEWS = 8  # per process; a view of 200,000 fills holds some hundreds of MB

Watermark = tuple


@dataclass(frozen=True)
class LedgerView:
    """All of a user's fills before `until` (None: all), sorted once, and their books matched."""

    watermark: Watermark
    fills: list[LedgerFill]
    usable: dict[BookKey, list[LedgerFill]]  # per book, in (traded_at, id) order
    incomplete: list[IncompleteFill]
    problems: list[tuple[LedgerFill, str]]
    books: dict[BookKey, Book]

    def select(
        self, keeps: Callable[[LedgerFill], bool], window: Range = ALL_TIME
    ) -> tuple[Classified, dict[BookKey, Book]]:
        """The books `keeps` keeps (it answers alike for every fill of a book), whole, and their fills:
        the usable ones traded inside `window` only (what a report's fees read), the others all."""
        keys = [key for key, fills in self.usable.items() if keeps(fills[0])]
        inside = []
        for key in keys:
            fills = self.usable[key]
            low = 0 if window.start is None else bisect_left(fills, window.start, key=_traded_at)
            high = len(fills) if window.end is None else bisect_left(fills, window.end, key=_traded_at)
            inside.extend(fills[low:high])
        return (
            Classified(
                inside,
                [item for item in self.incomplete if keeps(item.fill)],
                [problem for fill, problem in self.problems if keeps(fill)],
            ),
            {key: self.books[key] for key in keys},
        )


_traded_at = attrgetter("traded_at")
_views: OrderedDict[tuple[int, datetime | None], LedgerView] = OrderedDict()
_lock = threading.Lock()


def watermark(session: Session, user_id: int) -> Watermark:
    fills = select(func.max(Fill.id), func.count(), func.count(Fill.order_id)).where(Fill.user_id == user_id)
    names = [
        select(
            func.md5(
                func.string_agg(func.concat(table.id, ":", table.name), aggregate_order_by(literal(","), table.id))
            )
        )
        .where(table.user_id == user_id)
        .scalar_subquery()
        for table in (Bot, Webhook)
    ]
    return tuple(session.execute(fills.add_columns(*names)).one())


def ledger_view(session: Session, user_id: int, until: datetime | None = None) -> LedgerView:
    """The user's ledger before `until`, from the kept view while no fill or source name changed."""
    key = (user_id, until)
    mark = watermark(session, user_id)
    with _lock:
        view = _views.get(key)
        if view is not None and view.watermark == mark:
            _views.move_to_end(key)
            return view
    view, _ = rebuild(session, user_id, until, mark)
    with _lock:
        _views[key] = view
        _views.move_to_end(key)
        while len(_views) > KEPT_VIEWS:
            _views.popitem(last=False)
    # Kept for long: out of the cyclic collector's walks (each would pause a page for a million objects).
    gc.freeze()
    return view


def rebuild(
    session: Session, user_id: int, until: datetime | None, mark: Watermark | None = None
) -> tuple[LedgerView, dict[str, float]]:
    """The view built from the database (not kept), and its seconds spent loading and matching."""
    mark = watermark(session, user_id) if mark is None else mark
    collecting = gc.isenabled()
    gc.disable()  # a million small acyclic objects: the cyclic collector would walk them over and over
    try:
        return _rebuild(session, user_id, until, mark)
    finally:
        if collecting:
            gc.enable()


def _rebuild(
    session: Session, user_id: int, until: datetime | None, mark: Watermark
) -> tuple[LedgerView, dict[str, float]]:
    started = time.perf_counter()
    fills = load_ledger(session, user_id, until=until)
    loaded = time.perf_counter()
    usable: dict[BookKey, list[LedgerFill]] = {}
    incomplete, problems = [], []
    for fill in fills:
        if reason := incomplete_reason(fill):
            incomplete.append(IncompleteFill(fill, reason))
        elif problem := ledger_problem(fill):
            problems.append((fill, problem))
        else:
            usable.setdefault((fill.broker_id, fill.symbol, fill.source.key), []).append(fill)
    books = {key: one_book(group) for key, group in usable.items()}  # as match_books, grouped already
    for book in books.values():
        round_trips(book)  # kept on the book: the views read them
    matched = time.perf_counter()
    view = LedgerView(mark, fills, usable, incomplete, problems, books)
    return view, {"load": loaded - started, "match": matched - loaded}


def forget(user_id: int) -> None:
    """Drop the user's kept views (the bench's cold start)."""
    with _lock:
        for key in [key for key in _views if key[0] == user_id]:
            del _views[key]
