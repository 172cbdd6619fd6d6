"""The Statistics page's filters, kept in the URL: period (a preset or dates), broker, venue, symbol,
source, strategy, strategy version, bot, webhook, side. Each names one of the trader's own things or is
refused with a clear message (another trader's bot id is as unknown as a made-up one). Every filter but
the period and the side selects whole books (broker × symbol × source), so FIFO matching always sees a
book whole. A strategy (version) selects the bots whose current version it is (or is a version of)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.ledger.entries import LedgerFill
from core.ledger.report import Range
from core.models import Bot, BrokerConnection, Fill, StrategyRecord, StrategyVersion, Webhook

PERIODS = {"today": "Today", "7d": "7 days", "30d": "30 days", "ytd": "Year to date", "all": "All time"}
SOURCES = {"manual": "Manual", "webhook": "Webhooks", "bot": "Bots", "oco": "OCO", "external": "External"}
SIDES = {"buy": "long (bought first)", "sell": "short (sold first)"}


class FilterError(ValueError):
    """A filter the page cannot apply; the message says which and why."""


@dataclass(frozen=True)
class Choices:
    """What this trader can filter by (and nothing of another trader's)."""

    brokers: dict[int, str]
    venues: dict[int, str]  # broker id -> venue
    symbols: list[str]
    bots: dict[int, str]
    webhooks: dict[int, str]
    strategies: dict[int, str]
    strategy_bots: dict[int, frozenset[int]]
    versions: dict[int, str] = field(default_factory=dict)  # "strategy name · vN", as the strategies pages say
    version_strategy: dict[int, int] = field(default_factory=dict)
    version_bots: dict[int, frozenset[int]] = field(default_factory=dict)


def load_choices(session: Session, user_id: int) -> Choices:
    connections = session.execute(
        select(BrokerConnection.id, BrokerConnection.label, BrokerConnection.venue)
        .where(BrokerConnection.user_id == user_id)
        .order_by(BrokerConnection.label)
    ).all()
    bots = session.execute(
        select(Bot.id, Bot.name, StrategyVersion.strategy_id, Bot.strategy_version_id)
        .outerjoin(StrategyVersion, Bot.strategy_version_id == StrategyVersion.id)
        .where(Bot.user_id == user_id)
        .order_by(Bot.name)
    ).all()
    strategy_bots: dict[int, set[int]] = {}
    version_bots: dict[int, set[int]] = {}
    for bot_id, _, strategy_id, version_id in bots:
        if strategy_id is not None:
            strategy_bots.setdefault(strategy_id, set()).add(bot_id)
            version_bots.setdefault(version_id, set()).add(bot_id)
    versions = session.execute(
        select(StrategyVersion.id, StrategyVersion.number, StrategyRecord.id, StrategyRecord.name)
        .join(StrategyRecord, StrategyVersion.strategy_id == StrategyRecord.id)
        .where(StrategyRecord.user_id == user_id)
        .order_by(StrategyRecord.name, StrategyVersion.number)
    ).all()
    return Choices(
        brokers={row.id: row.label for row in connections},
        venues={row.id: row.venue for row in connections},
        symbols=list(
            session.scalars(select(Fill.symbol).where(Fill.user_id == user_id).distinct().order_by(Fill.symbol))
        ),
        bots={row.id: row.name for row in bots},
        webhooks=dict(
            session.execute(
                select(Webhook.id, Webhook.name).where(Webhook.user_id == user_id).order_by(Webhook.name)
            ).all()
        ),
        strategies=dict(
            session.execute(
                select(StrategyRecord.id, StrategyRecord.name)
                .where(StrategyRecord.user_id == user_id)
                .order_by(StrategyRecord.name)
            ).all()
        ),
        strategy_bots={key: frozenset(ids) for key, ids in strategy_bots.items()},
        versions={version_id: f"{name} · v{number}" for version_id, number, _, name in versions},
        version_strategy={version_id: strategy_id for version_id, _, strategy_id, _ in versions},
        version_bots={key: frozenset(ids) for key, ids in version_bots.items()},
    )


@dataclass(frozen=True)
class Filters:
    args: dict[str, str] = field(default_factory=dict)  # as given (cleaned): the URL of this view
    start: date | None = None
    end: date | None = None  # inclusive: the whole day counts
    broker_ids: frozenset[int] | None = None  # broker and venue
    symbol: str | None = None
    source_kind: str | None = None
    source_keys: frozenset[str] | None = None  # strategy, version, bot, webhook
    side: str | None = None

    @property
    def window(self) -> Range:
        def midnight(day: date) -> datetime:
            return datetime.combine(day, time(), tzinfo=UTC)

        return Range(
            midnight(self.start) if self.start else None, midnight(self.end + timedelta(days=1)) if self.end else None
        )

    def keeps(self, fill: LedgerFill) -> bool:
        """Whether the fill's book is in this view (all fills of a book answer alike)."""
        return (
            (self.broker_ids is None or fill.broker_id in self.broker_ids)
            and (self.symbol is None or fill.symbol == self.symbol)
            and (self.source_kind is None or fill.source.kind == self.source_kind)
            and (self.source_keys is None or fill.source.key in self.source_keys)
        )


def _day(args: Mapping[str, str], name: str, title: str) -> date | None:
    text = (args.get(name) or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FilterError(f"{title} must be a date like 2025-01-31, not {text[:20]!r}") from None


def _pick(args: Mapping[str, str], name: str, allowed: Mapping, what: str) -> str | None:
    text = (args.get(name) or "").strip()
    if not text:
        return None
    if text not in {str(key) for key in allowed}:
        raise FilterError(f"unknown {what}: pick one of yours from the list")
    return text


def _period(args: Mapping[str, str], today: date) -> tuple[date | None, date | None]:
    preset = _pick(args, "period", PERIODS, "period (today, 7d, 30d, ytd or all)")
    start, end = _day(args, "start", "From"), _day(args, "end", "To")
    if preset and (start or end):
        raise FilterError("choose a period or dates, not both")
    if start and end and end < start:
        raise FilterError("the range ends before it starts")
    if preset is None or preset == "all":
        return start, end
    first = {"today": today, "7d": today - timedelta(days=6), "30d": today - timedelta(days=29)}
    return first.get(preset, date(today.year, 1, 1)), None


def parse_filters(args: Mapping[str, str], choices: Choices, today: date | None = None) -> Filters:
    start, end = _period(args, today or datetime.now(UTC).date())
    broker = _pick(args, "broker", choices.brokers, "broker")
    venue = _pick(args, "venue", set(choices.venues.values()), "venue")
    broker_ids = None
    if broker or venue:
        broker_ids = frozenset(
            b
            for b, v in choices.venues.items()
            if (broker is None or b == int(broker)) and (venue is None or v == venue)
        )
    source = (args.get("source") or "").strip() or None
    if source == "arbitrage":
        raise FilterError("arbitrage results are not in the fill ledger yet: the Arbitrage page shows them")
    source = _pick(args, "source", SOURCES, "source")
    keys = None
    strategy = _pick(args, "strategy", choices.strategies, "strategy")
    if strategy:
        keys = frozenset(f"bot:{bot_id}" for bot_id in choices.strategy_bots.get(int(strategy), ()))
    version = _pick(args, "version", choices.versions, "strategy version")
    if version:
        if strategy and choices.version_strategy[int(version)] != int(strategy):
            raise FilterError("that strategy version is not a version of the chosen strategy")
        version_keys = frozenset(f"bot:{bot_id}" for bot_id in choices.version_bots.get(int(version), ()))
        keys = version_keys if keys is None else keys & version_keys
    bot = _pick(args, "bot", choices.bots, "bot")
    webhook = _pick(args, "webhook", choices.webhooks, "webhook")
    for key in ([f"bot:{bot}"] if bot else []) + ([f"webhook:{webhook}"] if webhook else []):
        keys = frozenset({key}) if keys is None else keys & {key}
    cleaned = {k: (args.get(k) or "").strip() for k in NAMES}
    return Filters(
        {k: v for k, v in cleaned.items() if v},
        start,
        end,
        broker_ids,
        _pick(args, "symbol", choices.symbols, "symbol"),
        source,
        keys,
        _pick(args, "side", SIDES, "side (buy or sell)"),
    )


NAMES = (
    "period",
    "start",
    "end",
    "broker",
    "venue",
    "symbol",
    "source",
    "strategy",
    "version",
    "bot",
    "webhook",
    "side",
)
