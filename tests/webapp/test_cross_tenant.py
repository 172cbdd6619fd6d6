"""Journey: trader B probes every URL that names an object, with the ids of trader A's objects.
Every one answers 404, and A's objects are unchanged afterwards. Routes are read from the app's URL
map, so a route added later is covered without editing this test."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.infra.db import new_session, session_scope
from core.models import (
    BacktestRun,
    Bot,
    BrokerConnection,
    Notification,
    NotificationChannel,
    Order,
    StrategyRecord,
    Webhook,
)
from tests.support import csrf_token_from, remember_secret

# Which of A's objects a blueprint's routes take as their first id.
OBJECT_OF_AREA = {
    "brokers": "broker",
    "trading": "order",
    "strategies": "strategy",
    "webhooks": "webhook",
    "backtests": "run",
    "marketdata": "job",
    "bots": "bot",
    "notifications": "notification",
}
# Where one area's routes name objects of different kinds, the argument says which.
OBJECT_OF_ARGUMENT = {"channel_id": "channel"}
NOT_OBJECT_ROUTES = {"webhooks.receive_alert", "static", "admin.set_active"}


@pytest.fixture()
def objects_of_a(make_user):
    from core.candles import jobs
    from core.notifications import notify
    from core.notifications.channels import NewChannel
    from core.notifications.channels import add as add_channel
    from core.orders.submit import OrderIntent, record_order
    from core.strategies import store as strategy_store
    from core.webhooks.setup import WebhookSettings, create_webhook

    user_a, _ = make_user()
    with session_scope() as session:
        broker = BrokerConnection(user_id=user_a.id, venue="sim", label="A's broker", base_url="http://127.0.0.1:9")
        broker.set_credentials(remember_secret("a-api-key-123456"), remember_secret("a-api-secret-654321"))
        session.add(broker)
        session.flush()
        order = record_order(
            session,
            user_a.id,
            OrderIntent(
                broker_id=broker.id,
                symbol="BTCUSDT",
                side="buy",
                type="limit",
                quantity=Decimal("0.01"),
                price=Decimal("1000"),
            ),
        )
        strategy = strategy_store.create_strategy(session, user_a.id, "A's strategy", template="sma_cross")
        webhook, _token = create_webhook(
            session,
            user_a.id,
            WebhookSettings(
                name="A's hook", broker_id=broker.id, size_mode="quantity", size_value=Decimal("0.01"), symbol="BTCUSDT"
            ),
        )
        run = BacktestRun(
            user_id=user_a.id,
            strategy_version_id=strategy.versions[0].id,
            venue="sim",
            symbol="BTCUSDT",
            timeframe="1h",
            fee=Decimal("0.001"),
            slippage_bps=Decimal(0),
            cash=Decimal(10000),
        )
        session.add(run)
        bot = Bot(
            user_id=user_a.id,
            name="A's bot",
            strategy_version_id=strategy.versions[0].id,
            broker_id=broker.id,
            venue="sim",
            symbol="BTCUSDT",
            timeframe="1h",
            state="paused",
        )
        session.add(bot)
        session.flush()
        ids = {
            "broker": broker.id,
            "order": order.id,
            "strategy": strategy.id,
            "webhook": webhook.id,
            "run": run.id,
            "bot": bot.id,
        }
    ids["notification"] = notify(user_a.id, "error", "bot", "A's bot stopped", link=f"/bots/{bot.id}")
    ids["channel"] = add_channel(user_a.id, NewChannel(label="A's phone", url="ntfy://a-topic-of-a"))
    # A market-data job of A's (a 1-minute download: harmless whichever worker picks it up later).
    ids["job"] = jobs.start_download(
        user_a.id, venue="sim", symbol="BTCUSDT", timeframe="1m", start_ms=1_700_000_000_000, end_ms=1_700_000_060_000
    )
    return ids


def _object_routes(app):
    for rule in app.url_map.iter_rules():
        if not rule.arguments or rule.endpoint in NOT_OBJECT_ROUTES:
            continue
        area = rule.endpoint.split(".")[0]
        yield area, rule


def test_every_object_route_is_404_for_another_user(app, objects_of_a, make_user, login, redis_server):
    client_b = app.test_client()
    user_b, password_b = make_user()
    assert login(user_b.username, password_b, test_client=client_b).status_code == 302
    token = csrf_token_from(client_b.get("/").get_data(as_text=True))
    probed = []
    for area, rule in _object_routes(app):
        assert area in OBJECT_OF_AREA, f"route {rule.rule} names an object this test does not know; add its area"
        values = {}
        for name in sorted(rule.arguments):
            first_id = name.endswith("_id") or name == "id"  # the object's id; others (a version number) get 1
            kind = OBJECT_OF_ARGUMENT.get(name, OBJECT_OF_AREA[area])
            values[name] = objects_of_a[kind] if first_id else 1
        url = rule.rule
        for name, value in values.items():
            url = url.replace(f"<int:{name}>", str(value)).replace(f"<{name}>", str(value))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client_b.open(url, method=method, data={"csrf_token": token}, headers={"X-CSRFToken": token})
            assert response.status_code == 404, f"{method} {url} answered {response.status_code} to another user"
            probed.append(f"{method} {url}")
    assert len(probed) >= 25

    with new_session() as session:
        assert session.get(BrokerConnection, objects_of_a["broker"]) is not None
        assert session.get(Order, objects_of_a["order"]).state == "new"
        assert len(session.get(StrategyRecord, objects_of_a["strategy"]).versions) == 1
        webhook = session.get(Webhook, objects_of_a["webhook"])
        assert webhook is not None and not webhook.paused
        assert session.get(BacktestRun, objects_of_a["run"]) is not None
        assert session.get(Bot, objects_of_a["bot"]).state == "paused"  # B could not start it
        assert session.get(NotificationChannel, objects_of_a["channel"]).last_attempt_at is None  # nor test it
        assert session.get(Notification, objects_of_a["notification"]).read_at is None
