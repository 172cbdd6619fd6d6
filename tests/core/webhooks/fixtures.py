"""Webhook fixtures (imported by the webhook test modules): a trader's broker with markets, webhooks on it."""

from __future__ import annotations

import os
import secrets
from decimal import Decimal

import pytest
import redis
from celery import Celery

from tests.support import remember_secret

QUEUE_DB = 7  # a Redis database that no Celery worker of the test session consumes


def queue_url() -> str:
    return f"{os.environ['REDIS_URL'].rsplit('/', 1)[0]}/{QUEUE_DB}"


def sender() -> Celery:
    """A Celery app publishing where no worker listens: the tasks a test sends stay for it to read."""
    app = Celery("aristobot", set_as_current=False)
    app.config_from_object("celeryconfig")
    app.conf.broker_url = queue_url()
    return app


@pytest.fixture()
def orders_queue(redis_server):
    """The (flushed) Redis database `sender()` publishes to; its `orders` list holds the sent tasks."""
    client = redis.Redis.from_url(queue_url(), decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture()
def broker_of(infra):
    """A broker connection of `user` with BTCUSDT/ETHUSDT rules loaded (or none, with markets=False)."""
    from core.infra.db import session_scope
    from core.models import BrokerConnection, SymbolRule

    def factory(
        user,
        *,
        markets: bool = True,
        venue: str = "sim",
        base_url: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
    ) -> int:
        with session_scope() as session:
            broker = BrokerConnection(user_id=user.id, venue=venue, label=f"b{secrets.token_hex(3)}", base_url=base_url)
            broker.set_credentials(
                remember_secret(api_key or "key-" + secrets.token_hex(8)),
                remember_secret(api_secret or "sec-" + secrets.token_hex(12)),
            )
            session.add(broker)
            session.flush()
            if markets:
                for symbol, base in (("BTCUSDT", "BTC"), ("ETHUSDT", "ETH")):
                    session.add(
                        SymbolRule(
                            broker_id=broker.id,
                            symbol=symbol,
                            base=base,
                            quote="USDT",
                            rules={
                                "symbol": symbol,
                                "base": base,
                                "quote": "USDT",
                                "tick_size": "0.01",
                                "step_size": "0.00001",
                                "min_qty": "0.0001",
                                "min_notional": "5",
                            },
                        )
                    )
            return broker.id

    return factory


@pytest.fixture()
def webhook_of(infra):
    """Create a webhook through the domain API; returns (webhook id, token)."""
    from core.infra.db import session_scope
    from core.webhooks.setup import WebhookSettings, create_webhook

    def factory(user, broker_id: int, **overrides) -> tuple[int, str]:
        settings = {
            "name": f"wh{secrets.token_hex(2)}",
            "broker_id": broker_id,
            "size_mode": "quote",
            "size_value": Decimal("20"),
            **overrides,
        }
        with session_scope() as session:
            webhook, token = create_webhook(session, user.id, WebhookSettings(**settings))
            return webhook.id, remember_secret(token)

    return factory
