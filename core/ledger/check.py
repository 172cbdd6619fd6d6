"""`aristobot ledger check` and the daily maintenance: every bot's and webhook's position and P&L
recomputed from the fills two ways, as the Statistics page reads them (the user's whole ledger,
sources resolved from the orders) and as the bot, the webhooks and flatten ask them (that source's
orders alone), and each book's P&L against its own cash flows. Any difference is a disagreement."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal, localcontext

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.ledger.entries import LedgerFill, usable
from core.ledger.fifo import Book, book_key, match_books
from core.ledger.fills import PRECISION, ZERO
from core.ledger.loading import load_ledger
from core.ledger.positions import Position, bot_position, webhook_position
from core.models import User

TOLERANCE = Decimal("1e-18")  # the ledger's places: partial closes divide, sums round at 60 digits


@dataclass(frozen=True)
class Disagreement:
    user: str
    book: str  # broker #id · symbol · source key
    what: str
    statistics: str
    asked: str


@dataclass
class CheckResult:
    users_checked: int = 0
    positions_checked: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "users_checked": self.users_checked,
            "positions_checked": self.positions_checked,
            "disagreements": len(self.disagreements),
            "details": [asdict(d) for d in self.disagreements],
        }


def check(session: Session, username: str | None = None) -> CheckResult:
    """Check every user's books (or one user's: LookupError when there is no such user)."""
    query = select(User.id, User.username).order_by(User.id)
    if username is not None:
        query = query.where(User.username == username)
    users = session.execute(query).all()
    if username is not None and not users:
        raise LookupError(f"no user named {username!r}")
    result = CheckResult()
    for user_id, name in users:
        result.users_checked += 1
        good, _ = usable(load_ledger(session, user_id))
        per_book: dict[tuple[int, str, str], list[LedgerFill]] = {}
        for fill in good:
            per_book.setdefault(book_key(fill), []).append(fill)
        for key, book in match_books(good).items():
            with localcontext() as ctx:
                ctx.prec = PRECISION
                found = _check_book(session, book, per_book[key])
            result.positions_checked += 1
            label = f"broker #{book.broker_id} · {book.symbol} · {book.source.key}"
            result.disagreements += [Disagreement(name, label, *row) for row in found]
    return result


def _check_book(session: Session, book: Book, mine: list[LedgerFill]) -> list[tuple[str, str, str]]:
    cash = sum((f.cash_flow for f in mine), ZERO)
    found = []
    accounted = book.realised + book.open_cash + book.unheld_value
    if abs(accounted - cash) > TOLERANCE:
        found.append(("realised + open lots + dust sold vs cash flows", str(accounted), str(cash)))
    asked = _asked(session, book)
    if asked is not None:
        for what, theirs, ours in (
            ("quantity", book.quantity, asked.quantity),
            ("realised", book.realised, asked.realized_pnl),
            ("fills", Decimal(len(mine)), Decimal(asked.fills)),
        ):
            if abs(theirs - ours) > TOLERANCE:
                found.append((what, str(theirs), str(ours)))
    return found


def _asked(session: Session, book: Book) -> Position | None:
    """The position as the bot or the webhooks ask it (None for manual, OCO and deleted sources)."""
    ref = book.source.ref
    if ref is None or not ref.isdigit():
        return None
    if book.source.kind == "bot":
        return bot_position(session, int(ref), book.symbol)
    if book.source.kind == "webhook":
        return webhook_position(session, int(ref), book.symbol)
    return None
