"""Click-to-venue-ack benchmark of the real order pipeline: web view → Celery → adapter → simulator.

A trader clicks "Place order" (the confirmed POST of the trading page, through the real Flask app);
the clock stops when the worker publishes the venue's acknowledgement (state `open`) on the user's
Redis channel, which is what the page's live update listens to. Each round trip then cancels the
order the same way and times the `cancelled` event. Needs Postgres and Redis (the configured ones);
starts its own simulator and, unless told to use a running one, its own Celery worker on `orders`.
"""

from __future__ import annotations

import json
import re
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal

from core import accounts, brokers
from core.infra.bus import get_redis, order_events_channel
from core.infra.config import ROOT
from core.infra.db import session_scope
from core.percentiles import summary

TARGET_P99_MS = 150.0


@dataclass(frozen=True)
class BenchResult:
    n: int
    place_ms: list[float]
    cancel_ms: list[float]

    def as_dict(self) -> dict:
        out: dict = {"n": self.n, "target_p99_ms": TARGET_P99_MS}
        for name, values in (("place", self.place_ms), ("cancel", self.cancel_ms)):
            stats = summary(values, 1)
            out[name] = {
                "p50_ms": stats["p50"],
                "p99_ms": stats["p99"],
                "mean_ms": round(statistics.fmean(values), 1),
                "max_ms": stats["max"],
            }
        out["meets_target"] = out["place"]["p99_ms"] < TARGET_P99_MS and out["cancel"]["p99_ms"] < TARGET_P99_MS
        return out


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    if not match:
        raise RuntimeError("no CSRF token on the trading page")
    return match.group(1)


def _wait_event(pubsub, order_id: int, state: str, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)
        if message and message["type"] == "message":
            payload = json.loads(message["data"])
            if payload.get("order_id") == order_id and payload.get("state") == state:
                return time.perf_counter()
            if payload.get("order_id") == order_id and payload.get("state") in ("rejected", "unknown"):
                raise RuntimeError(f"order {order_id} went {payload['state']}: {payload.get('error')}")
    raise TimeoutError(f"order {order_id} did not reach {state} within {timeout:g}s (is a worker running?)")


def _start_worker() -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.celery_app",
            "worker",
            "-Q",
            "orders",
            "-c",
            "2",
            "-n",
            f"bench-{secrets.token_hex(3)}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run_bench(n: int = 200, *, warmup: int = 5, own_worker: bool = True) -> BenchResult:
    from sim.spot.server import start_in_thread
    from webapp import create_app

    sim = start_in_thread(seed=21)
    worker = _start_worker() if own_worker else None
    try:
        api_key, api_secret = f"bench{secrets.token_hex(6)}", secrets.token_urlsafe(24)
        sim.create_account(api_key, api_secret, {"USDT": "100000000"})
        password = accounts.generate_password()
        with session_scope() as session:
            user = accounts.create_user(session, f"bench-{secrets.token_hex(4)}", password, within_limits=False)
            broker = brokers.create_connection(
                session,
                user.id,
                brokers.ConnectionInput(
                    venue="sim", label="Bench", api_key=api_key, api_secret=api_secret, base_url=sim.url
                ),
            )
            brokers.load_markets(session, broker)
            user_id, username, broker_id = user.id, user.username, broker.id
        app = create_app()
        client = app.test_client()
        token = _csrf(client.get("/login").get_data(as_text=True))
        client.post("/login", data={"username": username, "password": password, "csrf_token": token})
        token = _csrf(client.get("/trading/").get_data(as_text=True))
        pubsub = get_redis().pubsub()
        pubsub.subscribe(order_events_channel(user_id))
        last = brokers.last_price(brokers.exchange_for_id(broker_id), "BTCUSDT") or Decimal(60000)
        price = str((last * Decimal("0.5")).quantize(Decimal("0.01")))  # rests: never fills
        ticket = {
            "csrf_token": token,
            "broker_id": str(broker_id),
            "symbol": "BTCUSDT",
            "side": "buy",
            "type": "limit",
            "size_mode": "quantity",
            "size": "0.001",
            "price": price,
            "confirmed": "1",
        }
        place_ms, cancel_ms = [], []
        for i in range(n + warmup):
            started = time.perf_counter()
            response = client.post("/trading/orders", data=ticket)
            if response.status_code != 302:
                raise RuntimeError(f"ticket refused: HTTP {response.status_code}")
            order_id = _latest_order(user_id)
            acked = _wait_event(pubsub, order_id, "open")
            started_cancel = time.perf_counter()
            client.post(f"/trading/orders/{order_id}/cancel", data={"csrf_token": token})
            cancelled = _wait_event(pubsub, order_id, "cancelled")
            if i >= warmup:
                place_ms.append((acked - started) * 1000)
                cancel_ms.append((cancelled - started_cancel) * 1000)
        pubsub.close()
        return BenchResult(n, place_ms, cancel_ms)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        sim.stop()


def _latest_order(user_id: int) -> int:
    from sqlalchemy import func, select

    from core.models import Order

    with session_scope() as session:
        return session.scalar(select(func.max(Order.id)).where(Order.user_id == user_id))


BENCH_REDIS_DB = 15


def isolated_redis_url(url: str, db: int = BENCH_REDIS_DB) -> str:
    """The same Redis server, another database: workers of a running install never see bench tasks."""
    base, _, tail = url.rpartition("/")
    return f"{base}/{db}" if tail.isdigit() and base.count("/") >= 2 else f"{url.rstrip('/')}/{db}"


if __name__ == "__main__":
    print(json.dumps(run_bench(int(sys.argv[1])).as_dict()))
