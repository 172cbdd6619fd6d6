"""`aristobot bench webhook`: a burst of TradingView alerts against the running web + worker + simulator.

Every alert is checked end to end: stored, answered, turned into exactly one order, acknowledged by the
venue. Replays of earlier alerts are mixed in; none may produce a second order.

Its accounts and webhooks are created on the first run and reused (bench/accounts.py), and so are
`--background-connections` more connections on the same venue, each with a resting order that the
running reconciliation checks as usual during the burst: the background load a busy install has.
"""

from __future__ import annotations

import asyncio
import json
import platform
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import aiohttp
from sqlalchemy import ColumnElement, func, select

from bench.accounts import bench_user, sim_connection, standing_orders
from bench.stack_cpu import above_idle, snapshot, spent_by_role
from core.exchanges.ratelimit import RequestClass, weight_spent
from core.infra.bus import get_redis
from core.infra.config import get_settings
from core.infra.db import new_session, session_scope, utcnow
from core.infra.security import register_secret
from core.models import Order, Webhook, WebhookAlert
from core.percentiles import percentile
from core.webhooks.monitor import ack_latencies_ms
from core.webhooks.setup import WebhookSettings, create_webhook, resume_webhook, webhook_token

BENCH_USER = "bench-webhook"
REPLAY_EVERY = 20  # one alert in 20 is sent twice (a TradingView retry)
ACK_STATES = ("open", "partially_filled", "filled")
# A Binance account may place 100 orders per 10 s (the simulator enforces the same ORDERS budget, and
# so does our shared rate limiter): a faster burst on one account waits for the venue, whatever the
# platform does. The bench spreads its alerts over enough accounts to stay under that budget.
ORDERS_PER_SECOND_PER_ACCOUNT = 8
BACKGROUND_CONNECTIONS = 60
VENUE = "sim"
# The stack's own CPU rate (heartbeats, polling, the background reconciliation) is measured this long before
# the burst, so that the CPU the alerts cost can be told from what runs anyway.
IDLE_SECONDS = 20.0


@dataclass
class BenchResult:
    rate: int
    seconds: float
    accounts: int
    sent: int
    unique_alerts: int
    replays: int
    accepted: int
    duplicates_answered: int
    failed_requests: int
    lost: int
    duplicate_orders: int
    orders_acked: int
    receive_p50_ms: float | None
    receive_p99_ms: float | None
    ack_p50_ms: float | None
    ack_p99_ms: float | None
    background_connections: int = 0
    background_weight_per_min: float = 0.0  # venue weight our limiter gave background work, per minute
    orders_weight_per_min: float = 0.0  # ... and orders (place/cancel), over the same time
    target_ack_p99_ms: int = 250
    # CPU of every process of the stack (bench/stack_cpu.py) from the first alert to the last order settled,
    # per unique alert: in total and by process role
    cpu_ms_per_alert: float | None = None
    cpu_ms_per_alert_by_process: dict[str, float] | None = None
    # ... the stack's CPU rate while idle just before the burst, and the CPU per alert above that rate (what
    # the alerts themselves cost, whatever the run's length)
    idle_cpu_ms_per_s: float | None = None
    cpu_ms_per_alert_above_idle: float | None = None
    cpu_ms_per_alert_above_idle_by_process: dict[str, float] | None = None


def accounts_for(rate: int) -> int:
    return max(1, -(-rate // ORDERS_PER_SECOND_PER_ACCOUNT))


def prepare(web_url: str, sim_url: str, number: int) -> tuple[str, int]:
    """Bench account `number`: a funded simulator connection and its webhook, made on the first run and
    reused after; returns (webhook URL, webhook id)."""
    with session_scope() as session:
        user_id = bench_user(session, BENCH_USER).id
        broker = sim_connection(session, user_id, f"bench {number}", sim_url)
        name = f"bench {number}"
        webhook = session.scalar(
            select(Webhook).where(Webhook.user_id == user_id, Webhook.broker_id == broker.id, Webhook.name == name)
        )
        if webhook is None:
            webhook, token = create_webhook(
                session,
                user_id,
                WebhookSettings(
                    name=name,
                    broker_id=broker.id,
                    symbol="BTCUSDT",
                    size_mode="quantity",
                    size_value=Decimal("0.001"),
                    rate_limit_per_minute=10_000,
                ),
            )
        else:
            token = webhook_token(webhook)
            if webhook.paused:
                resume_webhook(webhook)
        register_secret(token)
        return f"{web_url.rstrip('/')}/webhooks/tv/{token}", webhook.id


def prepare_background(sim_url: str, count: int) -> list[int]:
    """`count` more connections on the venue, each with a resting order the reconciliation keeps checking
    (and an older fill, history its sweep looks at)."""
    with session_scope() as session:
        user_id = bench_user(session, BENCH_USER).id
        broker_ids = [
            sim_connection(session, user_id, f"background {number}", sim_url).id for number in range(1, count + 1)
        ]
    standing_orders(broker_ids, resting=True, age=timedelta(hours=1))
    return broker_ids


def _weight_by_class() -> dict[RequestClass, int]:
    return weight_spent(get_redis(), VENUE)


def _body(index: int, start: datetime) -> str:
    moment = start + timedelta(microseconds=index)  # a distinct alert time per alert, all within the freshness window
    return json.dumps(
        {
            "action": "buy" if index % 2 == 0 else "sell",
            "ticker": "BTCUSDT",
            "price": "60000",
            "interval": "1",
            "time": moment.isoformat().replace("+00:00", "Z"),
        }
    )


async def _fire(urls: list[str], rate: int, seconds: float) -> tuple[list[float], dict[int, int], int, int]:
    """Paced sends, round robin over the webhooks; returns (receive latencies ms, HTTP status counts,
    unique alerts, replays)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = datetime.now(UTC)
    total = int(rate * seconds)
    connector = aiohttp.TCPConnector(limit=128)
    timeout = aiohttp.ClientTimeout(total=10)
    replays = 0

    async def send(session: aiohttp.ClientSession, index: int) -> None:
        url, body = urls[index % len(urls)], _body(index, start)
        began = time.perf_counter()
        try:
            async with session.post(url, data=body, headers={"Content-Type": "text/plain; charset=utf-8"}) as answer:
                await answer.read()
                status = answer.status
        except (TimeoutError, aiohttp.ClientError):
            status = 0
        latencies.append((time.perf_counter() - began) * 1000)
        statuses[status] = statuses.get(status, 0) + 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = []
        t0 = time.perf_counter()
        for index in range(total):
            delay = t0 + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(session, index)))
            if index % REPLAY_EVERY == REPLAY_EVERY - 1:
                replays += 1
                tasks.append(asyncio.create_task(send(session, index - REPLAY_EVERY // 2)))
        await asyncio.gather(*tasks)
    return latencies, statuses, total, replays


def _settle(mine: ColumnElement[bool], timeout: float) -> None:
    """Wait until every accepted alert's order was acknowledged by the venue, or ended (the timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with new_session() as session:
            expected = session.execute(
                select(func.count()).select_from(WebhookAlert).where(mine, WebhookAlert.status == "accepted")
            ).scalar()
            settled = session.execute(
                select(func.count())
                .select_from(Order)
                .join(WebhookAlert, Order.source_ref == func.cast(WebhookAlert.id, Order.source_ref.type))
                .where(
                    mine, Order.source == "webhook", Order.state.in_(ACK_STATES + ("rejected", "expired", "cancelled"))
                )
            ).scalar()
        if settled >= expected:
            return
        time.sleep(0.5)


def run(
    web_url: str,
    sim_url: str,
    rate: int,
    seconds: float,
    settle_timeout: float = 600.0,
    accounts: int | None = None,
    background_connections: int = BACKGROUND_CONNECTIONS,
    idle_seconds: float = IDLE_SECONDS,
) -> BenchResult:
    accounts = accounts or accounts_for(rate)
    urls, webhook_ids = zip(*(prepare(web_url, sim_url, number) for number in range(1, accounts + 1)), strict=True)
    prepare_background(sim_url, background_connections)
    var_dir = str(get_settings().var_dir)
    idle_before = snapshot(var_dir)
    time.sleep(idle_seconds)
    idle_ms = spent_by_role(idle_before, snapshot(var_dir))
    started, weight_before, clock, cpu_before = utcnow(), _weight_by_class(), time.monotonic(), snapshot(var_dir)
    latencies, statuses, unique, replays = asyncio.run(_fire(list(urls), rate, seconds))
    mine = WebhookAlert.webhook_id.in_(webhook_ids) & (WebhookAlert.received_at >= started)
    _settle(mine, settle_timeout)
    cpu_ms = spent_by_role(cpu_before, snapshot(var_dir))
    minutes = (time.monotonic() - clock) / 60
    caused_ms = above_idle(cpu_ms, idle_ms, idle_seconds, minutes * 60) if idle_seconds > 0 else {}
    weight_after = _weight_by_class()
    spent = {cls: (weight_after[cls] - weight_before[cls]) / minutes for cls in RequestClass}
    with new_session() as session:
        counts = dict(
            session.execute(select(WebhookAlert.status, func.count()).where(mine).group_by(WebhookAlert.status)).all()
        )
        per_alert = session.execute(
            select(
                WebhookAlert.id,
                WebhookAlert.status,
                func.count(Order.id),
                func.count(Order.id).filter(Order.state.in_(ACK_STATES)),
            )
            .outerjoin(
                Order,
                (Order.source == "webhook") & (Order.source_ref == func.cast(WebhookAlert.id, Order.source_ref.type)),
            )
            .where(mine)
            .group_by(WebhookAlert.id, WebhookAlert.status)
        ).all()
        acks = ack_latencies_ms(session, select(WebhookAlert.id).where(mine))
    accepted_with_ack = sum(1 for _, status, _, acked in per_alert if status == "accepted" and acked == 1)
    duplicate_orders = sum(max(orders - 1, 0) if status == "accepted" else orders for _, status, orders, _ in per_alert)
    return BenchResult(
        rate=rate,
        seconds=seconds,
        accounts=accounts,
        sent=len(latencies),
        unique_alerts=unique,
        replays=replays,
        accepted=counts.get("accepted", 0),
        duplicates_answered=counts.get("duplicate", 0),
        failed_requests=sum(n for status, n in statuses.items() if status not in (200, 202)),
        lost=unique - accepted_with_ack,
        duplicate_orders=duplicate_orders,
        orders_acked=len(acks),
        receive_p50_ms=_round(percentile(latencies, 0.5)),
        receive_p99_ms=_round(percentile(latencies, 0.99)),
        ack_p50_ms=_round(percentile(acks, 0.5)),
        ack_p99_ms=_round(percentile(acks, 0.99)),
        background_connections=background_connections,
        background_weight_per_min=round(spent[RequestClass.BACKGROUND], 1),
        orders_weight_per_min=round(spent[RequestClass.ORDER], 1),
        cpu_ms_per_alert=round(sum(cpu_ms.values()) / unique, 2) if unique and cpu_ms else None,
        cpu_ms_per_alert_by_process={role: round(ms / unique, 2) for role, ms in sorted(cpu_ms.items())}
        if unique and cpu_ms
        else None,
        idle_cpu_ms_per_s=round(sum(idle_ms.values()) / idle_seconds, 1) if idle_seconds > 0 else None,
        cpu_ms_per_alert_above_idle=round(sum(caused_ms.values()) / unique, 2) if unique and caused_ms else None,
        cpu_ms_per_alert_above_idle_by_process={role: round(ms / unique, 2) for role, ms in sorted(caused_ms.items())}
        if unique and caused_ms
        else None,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def write_markdown(result: BenchResult, path: Path) -> None:
    rows = "\n".join(f"| {name} | {value} |" for name, value in asdict(result).items())
    verdict = (
        "PASS"
        if (
            result.lost == 0
            and result.duplicate_orders == 0
            and result.ack_p99_ms is not None
            and result.ack_p99_ms < result.target_ack_p99_ms
        )
        else "FAIL"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""# Webhook benchmark

`aristobot bench webhook --rate {result.rate} --seconds {result.seconds:g} --json` against the running web +
worker + simulator (one replay in {REPLAY_EVERY} alerts, spread over {result.accounts} simulator account(s) so that
none exceeds the venue's order budget of 100 orders / 10 s; {result.background_connections} more connections on
the venue reconciled meanwhile). Verdict: **{verdict}** (lost 0, duplicate orders 0,
receive-to-venue-ack p99 < {result.target_ack_p99_ms} ms).

Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({platform.machine()},
{platform.processor() or "cpu"}, Python {platform.python_version()}).

| metric | value |
| --- | --- |
{rows}

- receive: the HTTP round trip seen by the sender (TradingView gives up after 3 s).
- ack: from the alert's arrival (stored `received_at`) to its order's first live state reported by the
  venue (`open` / `filled` event), i.e. alert → stored → order recorded → `orders` queue → worker → venue.
- lost: alerts sent once that do not end as exactly one acknowledged order.
- background_weight_per_min / orders_weight_per_min: the venue weight our limiter gave each class during the
  run (burst + settle), per minute; the venue allows 6,000.
""")
