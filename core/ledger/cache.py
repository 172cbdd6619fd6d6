"""A trader's ledger matched once and kept: the Statistics page filters whole books (broker × symbol ×
source) and a period, so its views read the books of one matching instead of matching 200,000 fills
again per view.

A view is kept per (user id, end of the range) in this process, with the *watermark* of what it holds:
the user's fills (highest id and count; fills are only ever added, an order's deletion aside, which
no code path does) and the names of their bots and webhooks (the sources' titles). Every read asks
the database for the watermark (one query, the fills' part from an index) and, when it moved:
- new fills only (a view of all time, same names, the count grown by exactly the fills above the
  highest id it holds): those are loaded and only the books they touch are matched again, whole;
- anything else (a fill committed below that id, a renamed bot, a range with an end): a rebuild.
A view of all time takes its watermark from the fills it loaded, so it never claims more than it holds.
The key holds the user id and the fills are loaded for that user only: a view is never another trader's.
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
from core.ledger.fifo import Book, BookKey, one_book
from core.ledger.loading import load_ledger
from core.ledger.report import Range
from core.models import Bot, Fill, Webhook

ALL_TIME = Range()
# Per process, over every kept view, least recently read dropped first (the newest always kept): a fill
# with its share of the books and round trips holds ~1.6 kB (200,000 fills: 320 MB, measured).
KEPT_FILLS = 600_000

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
    rows: dict[BookKey, list[LedgerFill]]  # every fill per book (usable or not), in (traded_at, id) order

    def books_of(self, keeps: Callable[[LedgerFill], bool]) -> dict[BookKey, Book]:
        """The books `keeps` keeps, matched (with their trace: core/ledger/daily.py view_days_of_books)."""
        return {key: self.books[key] for key, fills in self.usable.items() if keeps(fills[0])}

    def first_fills_of(self, keeps: Callable[[LedgerFill], bool]) -> list[LedgerFill]:
        """The first fill (usable or not) of each book `keeps` keeps: their (broker, symbol) pairs and
        the first day, as fills_of would give them, without ordering all of its fills."""
        return [rows[0] for rows in self.rows.values() if keeps(rows[0])]

    def fills_of(self, keeps: Callable[[LedgerFill], bool]) -> list[LedgerFill]:
        """Every fill of the books `keeps` keeps, usable or not, in (traded_at, id) order: what
        load_ledger gives for them."""
        kept = [rows for rows in self.rows.values() if keeps(rows[0])]
        return kept[0][:] if len(kept) == 1 else sorted((f for rows in kept for f in rows), key=_fill_order)

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
_fill_order = attrgetter("traded_at", "fill_id")
_views: OrderedDict[tuple[int, datetime | None], LedgerView] = OrderedDict()
_lock = threading.Lock()


def watermark(session: Session, user_id: int) -> Watermark:
    fills = select(func.max(Fill.id), func.count()).where(Fill.user_id == user_id)
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
        kept = _views.get(key)
        if kept is not None and kept.watermark == mark:
            _views.move_to_end(key)
            return kept
    view = _extended(session, user_id, kept, mark) if kept is not None and until is None else None
    if view is None:
        view, _ = rebuild(session, user_id, until, mark)
        # Kept for long: out of the cyclic collector's walks (each would pause a page for a million
        # objects). Frozen with it, whatever else lives now; the view itself holds no cycle, so it is
        # freed when dropped. Only after a rebuild: a new fill's few objects can stay in the walks.
        gc.freeze()
    with _lock:
        _views[key] = view
        _views.move_to_end(key)
        while len(_views) > 1 and sum(len(other.fills) for other in _views.values()) > KEPT_FILLS:
            _views.popitem(last=False)
    return view


def _extended(session: Session, user_id: int, kept: LedgerView, mark: Watermark) -> LedgerView | None:
    """The kept view of all time with the fills added since, or None when more than that changed."""
    (highest, count, *names), (_, now, *names_now) = kept.watermark, mark
    if names != names_now or highest is None:
        return None
    new = load_ledger(session, user_id, after_id=highest)
    if count + len(new) != now:
        return None  # a fill committed below the highest id held (or one gone): rebuilt whole
    sorted_new = _sorted(new)
    usable, books, rows = dict(kept.usable), dict(kept.books), dict(kept.rows)
    for key, group in sorted_new.rows.items():
        rows[key] = sorted([*rows.get(key, []), *group], key=_fill_order)
    for key, group in sorted_new.usable.items():
        usable[key] = sorted([*usable.get(key, []), *group], key=_fill_order)  # a new list: views read the old
        books[key] = one_book(usable[key], traced=True)
    return LedgerView(
        _held(kept.watermark, [*kept.fills, *new]),
        [*kept.fills, *new],
        usable,
        sorted([*kept.incomplete, *sorted_new.incomplete], key=lambda item: _fill_order(item.fill)),
        sorted([*kept.problems, *sorted_new.problems], key=lambda pair: _fill_order(pair[0])),
        books,
        rows,
    )


def _held(mark: Watermark, fills: list[LedgerFill]) -> Watermark:
    """The watermark of exactly these fills (all of a user's, in any order), with mark's names."""
    return (max((f.fill_id for f in fills), default=None), len(fills), *mark[2:])


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
    sorted_fills = _sorted(fills)
    # as match_books, grouped already; a book's round trips are grouped when a view first reads them
    # (fifo.round_trips keeps them on the book), so a view of one broker groups only its books'
    books = {key: one_book(group, traced=True) for key, group in sorted_fills.usable.items()}
    matched = time.perf_counter()
    held = _held(mark, fills) if until is None else mark  # a range's end leaves fills out: the mark read first
    view = LedgerView(
        held, fills, sorted_fills.usable, sorted_fills.incomplete, sorted_fills.problems, books, sorted_fills.rows
    )
    return view, {"load": loaded - started, "match": matched - loaded}


@dataclass(frozen=True)
class _Sorted:
    rows: dict[BookKey, list[LedgerFill]]  # every fill per book, in the fills' order
    usable: dict[BookKey, list[LedgerFill]]  # per book, in the fills' order
    incomplete: list[IncompleteFill]
    problems: list[tuple[LedgerFill, str]]


def _sorted(fills: list[LedgerFill]) -> _Sorted:
    """As entries.classify, the usable fills grouped per book and each problem with its fill."""
    rows: dict[BookKey, list[LedgerFill]] = {}
    usable: dict[BookKey, list[LedgerFill]] = {}
    incomplete, problems = [], []
    for fill in fills:
        key = (fill.broker_id, fill.symbol, fill.source.key)
        rows.setdefault(key, []).append(fill)
        if reason := incomplete_reason(fill):
            incomplete.append(IncompleteFill(fill, reason))
        elif problem := ledger_problem(fill):
            problems.append((fill, problem))
        else:
            usable.setdefault(key, []).append(fill)
    return _Sorted(rows, usable, incomplete, problems)


def forget(user_id: int) -> None:
    """Drop the user's kept views (the bench's cold start)."""
    with _lock:
        for key in [key for key in _views if key[0] == user_id]:
            del _views[key]
