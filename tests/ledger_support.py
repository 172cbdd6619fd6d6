"""A trader's ledger written straight into the tables: broker connections, a bot, a webhook alert, and
filled orders with their fills (the Statistics, Bots page and `aristobot ledger check` tests)."""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal

from core import brokers
from core.infra.db import session_scope
from core.models import Bot, Fill, Order, StrategyRecord, StrategyVersion, Webhook, WebhookAlert
from tests.support import free_port, remember_secret

D = Decimal


class Ledger:
    """Writes a trader's broker connections, orders and fills straight into the ledger tables."""

    def __init__(self, user_id: int):
        self.user_id = user_id

    def broker(self, label: str, base_url: str | None = None) -> int:
        api_key, secret = remember_secret(f"k{secrets.token_hex(8)}"), remember_secret(f"s{secrets.token_hex(12)}")
        with session_scope() as session:
            broker = brokers.create_connection(
                session,
                self.user_id,
                brokers.ConnectionInput(
                    venue="sim",
                    label=label,
                    api_key=api_key,
                    api_secret=secret,
                    base_url=base_url or f"http://127.0.0.1:{free_port()}",
                ),
            )  # nothing listens: no price
            return broker.id

    def strategy(self, name: str, versions: int = 1) -> tuple[int, list[int]]:
        """A strategy of this trader with `versions` versions: its id and the versions' ids (v1 first)."""
        with session_scope() as session:
            record = StrategyRecord(user_id=self.user_id, name=name)
            session.add(record)
            session.flush()
            rows = [StrategyVersion(strategy_id=record.id, number=n, code="") for n in range(1, versions + 1)]
            session.add_all(rows)
            session.flush()
            return record.id, [row.id for row in rows]

    def bot(self, broker_id: int, name: str, strategy_version_id: int | None = None) -> str:
        with session_scope() as session:
            bot = Bot(
                user_id=self.user_id,
                name=name,
                broker_id=broker_id,
                venue="sim",
                symbol="BTCUSDT",
                timeframe="1h",
                strategy_version_id=strategy_version_id,
            )
            session.add(bot)
            session.flush()
            return bot.source_ref

    def webhook_alert(self, broker_id: int, name: str) -> str:
        with session_scope() as session:
            webhook = Webhook(
                user_id=self.user_id,
                broker_id=broker_id,
                name=name,
                token_hash=secrets.token_hex(32),
                token_enc="x",
                size_value=D("100"),
            )
            session.add(webhook)
            session.flush()
            alert = WebhookAlert(webhook_id=webhook.id, status="accepted", http_status=200)
            session.add(alert)
            session.flush()
            return str(alert.id)

    def trade(
        self,
        broker_id: int,
        side: str,
        quantity: str,
        price: str,
        at: datetime,
        *,
        fee: str = "0",
        fee_asset: str | None = "USDT",
        source: str = "manual",
        source_ref: str | None = None,
        symbol: str = "BTCUSDT",
    ) -> None:
        with session_scope() as session:
            order = Order(
                user_id=self.user_id,
                broker_id=broker_id,
                symbol=symbol,
                side=side,
                type="market",
                quantity=D(quantity),
                state="filled",
                filled_quantity=D(quantity),
                source=source,
                source_ref=source_ref,
            )
            session.add(order)
            session.flush()
            session.add(
                Fill(
                    order_id=order.id,
                    user_id=self.user_id,
                    broker_id=broker_id,
                    symbol=symbol,
                    side=side,
                    venue_trade_id=secrets.token_hex(8),
                    price=D(price),
                    quantity=D(quantity),
                    fee=D(fee),
                    fee_asset=fee_asset,
                    traded_at=at,
                )
            )
