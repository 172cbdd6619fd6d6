"""`aristobot bench chaos`: kill -9 one process at random per trial while manual orders, webhook alerts and
bot ticks (bench/chaos_bots.py) flow through a running `make run` stack, wait for recovery, then check every
order, alert and bot tick end to end.

Recovery of a trial: from the kill until supervisord runs a new process in its place, that process does its
job again, `/healthz` answers 200, and a probe order placed then is acknowledged by the venue; each phase is
timed (bench/chaos_phases.py). Lost: an order committed in our database
(or an alert the web app accepted) without exactly one acknowledged order at the end. Duplicated: a client
order id the venue executed more than once, or an alert with more than one order. Unhedged: an arbitrage
position whose venue sizes do not net to zero, or an intent still open, once everything settled."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import random
import signal
import sys
import threading
import time
import xmlrpc.client
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import requests
from sqlalchemy import func, select

from bench.accounts import SYMBOL, bench_user, sim_connection
from bench.bots import pause_bots
from bench.chaos_bots import BotVerdict, start_bots
from bench.chaos_bots import verdict as bots_verdict
from bench.chaos_phases import RECOVERY_TIMEOUT_S, Probes, Trial, alive, healthy, load_1m, phase_summary, rounded, watch
from bench.webhook import ACK_STATES
from bench.webhook import prepare as prepare_webhook
from core.infra.db import new_session, session_scope
from core.models import ArbIntent, ArbPosition, Order, WebhookAlert
from core.models.arb import INTENT_OPEN_STATES
from core.orders.dispatch import enqueue_order
from core.orders.submit import OrderIntent, record_order
from core.percentiles import percentile
from core.supervision import control

VICTIMS = ("worker", "maintenance", "web", "beat", "feeds", "arb", "sim", "redis", "postgres")
# The real server under the `aristobot services` wrapper: what a crash or the OOM killer would take.
SERVER_NAMES = {"postgres": "postgres", "redis": "redis-server"}
LABEL = "chaos"
PACE_S = 1.0
ARB_SETTLE_S = 60.0


@dataclass
class ChaosResult:
    trials: int
    victims: dict[str, int]
    orders_expected: int
    orders_lost: int
    orders_duplicated: int
    alerts_sent: int
    alerts_accepted: int
    alerts_lost: int
    unhedged_arb_legs: int
    recovery_p50_s: float | None
    recovery_p99_s: float | None
    recovery_max_s: float | None
    not_recovered: int
    lost_detail: dict[str, int] = field(default_factory=dict)
    # Where the seconds go (bench/chaos_phases.py): per phase, seconds since the kill; the CPU a restarted
    # process spent on its start; the slowest recovery per victim; the machine's 1-min load during the trials.
    phases_p50_s: dict[str, float | None] = field(default_factory=dict)
    phases_p99_s: dict[str, float | None] = field(default_factory=dict)
    start_cpu_p50_s: float | None = None
    recovery_max_by_victim: dict[str, float | None] = field(default_factory=dict)
    load_1m_min_max: tuple[float, float] | None = None
    bots: BotVerdict | None = None  # running bots in the traffic: ticks missing, skipped, traded


class Supervisor:
    """The running stack's supervisord, through its socket in var/."""

    def __init__(self, var_dir: Path):
        supervisor = control.Supervisor.running(var_dir)
        if supervisor is None:
            raise RuntimeError(
                f"no supervisord at {control.socket_path(var_dir)}: start the stack with `make run` first"
            )
        self.rpc = supervisor

    def pid(self, name: str) -> int:
        try:
            return self.rpc.pid(name)
        except xmlrpc.client.Error as exc:  # supervisord busy or restarting the program: ask again
            raise OSError(str(exc)) from exc

    def kill(self, name: str) -> int:
        """kill -9 the process (for postgres and redis, their server under the wrapper); returns the
        supervised pid that was running."""
        pid = self.pid(name)
        if not pid:
            raise RuntimeError(f"{name} is not running")
        servers = [child for child in _children(pid) if _comm(child) == SERVER_NAMES.get(name)]
        os.kill(servers[0] if servers else pid, signal.SIGKILL)
        return pid


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class Traffic(threading.Thread):
    """One manual order and one webhook alert every PACE_S, until stopped; counts what was accepted."""

    def __init__(self, user_id: int, broker_id: int, alert_url: str):
        super().__init__(name="chaos-traffic", daemon=True)
        self.user_id, self.broker_id, self.alert_url = user_id, broker_id, alert_url
        self.orders: list[int] = []
        self.alerts_sent = 0
        self.alerts_accepted = 0
        self._stop_event = threading.Event()
        self._sequence = itertools.count()

    def run(self) -> None:
        while not self._stop_event.wait(PACE_S):
            self.place_order()
            self.send_alert()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(30)

    def place_order(self) -> int | None:
        """Record a market order and queue it, as the trading page does; None when the database refused it
        (the trader saw an error: not an order the platform owes)."""
        side = "buy" if next(self._sequence) % 2 == 0 else "sell"
        intent = OrderIntent(
            broker_id=self.broker_id, symbol=SYMBOL, side=side, type="market", quantity=Decimal("0.001")
        )
        try:
            with session_scope() as session:
                order_id = record_order(session, self.user_id, intent).id
        except Exception:  # noqa: BLE001 - Postgres down: refused, nothing committed
            return None
        self.orders.append(order_id)
        enqueue_order(order_id)  # Redis down: it stays `new` and the recovery sweep queues it
        return order_id

    def send_alert(self) -> None:
        moment = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        index = next(self._sequence)
        body = {
            "action": "buy" if index % 2 else "sell",
            "ticker": SYMBOL,
            "price": "60000",
            "interval": "1",
            "time": moment,
        }
        self.alerts_sent += 1
        try:
            answer = requests.post(
                self.alert_url, data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=5
            )
        except requests.RequestException:
            return  # the web app is down: TradingView sees the failure, nothing was accepted
        if answer.status_code in (200, 202):
            self.alerts_accepted += 1


def _acked(order_id: int) -> bool:
    try:
        with new_session() as session:
            return session.scalar(select(Order.state).where(Order.id == order_id)) in ACK_STATES
    except Exception:  # noqa: BLE001 - Postgres still coming back
        return False


def _signed_all_orders(sim_url: str, api_key: str, api_secret: str) -> list[dict]:
    query = urlencode({"symbol": SYMBOL, "limit": 1000, "timestamp": int(time.time() * 1000)})
    signature = hmac.new(api_secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    answer = requests.get(
        f"{sim_url.rstrip('/')}/api/v3/allOrders?{query}&signature={signature}",
        headers={"X-MBX-APIKEY": api_key},
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()


def settle(order_ids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with new_session() as session:
            pending = session.scalar(
                select(func.count()).where(Order.id.in_(order_ids), Order.state.not_in(ACK_STATES + ("rejected",)))
            )
        if not pending:
            return
        time.sleep(2)


def unhedged_arb_legs() -> int:
    """Arbitrage positions whose venue sizes do not net to zero, plus intents still open."""
    with new_session() as session:
        positions = session.scalars(select(ArbPosition)).all()
        open_intents = session.scalar(select(func.count()).where(ArbIntent.state.in_(INTENT_OPEN_STATES))) or 0
    return open_intents + sum(1 for p in positions if sum(Decimal(str(size)) for size in (p.sizes or {}).values()) != 0)


def settle_arb(timeout: float) -> None:
    """The arb engine keeps trading: an entry in flight at the end is open for a moment, not unhedged. Wait
    until nothing is open (or the timeout: what is still open then is counted)."""
    deadline = time.monotonic() + timeout
    while unhedged_arb_legs() and time.monotonic() < deadline:
        time.sleep(2)


def run(
    web_url: str,
    sim_url: str,
    var_dir: Path,
    trials: int,
    seed: int,
    settle_timeout: float = 300.0,
    candidates: tuple[str, ...] = VICTIMS,
) -> ChaosResult:
    supervisor = Supervisor(var_dir)
    with session_scope() as session:
        user_id = bench_user(session, "bench-chaos").id
        broker = sim_connection(session, user_id, LABEL, sim_url)
        broker_id, creds = broker.id, broker.credentials()
        bot_ids = start_bots(session, user_id, broker_id)
    bots_started_ms = int(time.time() * 1000)
    alert_url, webhook_id = prepare_webhook(web_url, sim_url, 901)
    started = datetime.now(UTC) - timedelta(seconds=1)
    traffic = Traffic(user_id, broker_id, alert_url)
    traffic.start()
    rng = random.Random(seed)
    victims: Counter[str] = Counter()
    trials_done: list[Trial] = []
    probes = Probes(
        pid=supervisor.pid,
        alive=lambda victim, pid: alive(victim, pid, sim_url),
        healthy=lambda: healthy(web_url),
        place=traffic.place_order,
        acked=_acked,
    )
    try:
        for _ in range(trials):
            victim = rng.choice(candidates)
            time.sleep(rng.uniform(2, 5))  # traffic in flight when the process dies
            try:
                old_pid = supervisor.kill(victim)
            except (RuntimeError, OSError) as exc:  # not running (still recovering from a restart): no trial
                print(json.dumps({"victim": victim, "skipped": str(exc)}), file=sys.stderr, flush=True)
                continue
            victims[victim] += 1
            trial = watch(Trial(victim, load_1m(), time.time()), old_pid, time.monotonic(), probes)
            trials_done.append(trial)
            print(trial.line(), file=sys.stderr, flush=True)
    finally:
        traffic.stop()
        bots_ended_ms = int(time.time() * 1000)
    try:
        settle(traffic.orders, settle_timeout)
        settle_arb(ARB_SETTLE_S)
    finally:
        pause_bots(bot_ids)
    result = _verdict(traffic, broker_id, webhook_id, started, sim_url, creds, victims, trials_done)
    result.bots = bots_verdict(bot_ids, bots_started_ms, bots_ended_ms)
    return result


def _verdict(
    traffic: Traffic,
    broker_id: int,
    webhook_id: int,
    started: datetime,
    sim_url: str,
    creds: dict,
    victims: Counter[str],
    trials: list[Trial],
) -> ChaosResult:
    with new_session() as session:
        states = dict(session.execute(select(Order.id, Order.state).where(Order.id.in_(traffic.orders))).all())
        client_ids = set(
            session.scalars(
                select(Order.client_order_id).where(Order.broker_id == broker_id, Order.created_at >= started)
            )
        )
        mine = (WebhookAlert.webhook_id == webhook_id) & (WebhookAlert.received_at >= started)
        per_alert = session.execute(
            select(WebhookAlert.id, func.count(Order.id).filter(Order.state.in_(ACK_STATES)), func.count(Order.id))
            .outerjoin(
                Order,
                (Order.source == "webhook") & (Order.source_ref == func.cast(WebhookAlert.id, Order.source_ref.type)),
            )
            .where(mine, WebhookAlert.status == "accepted")
            .group_by(WebhookAlert.id)
        ).all()
    venue = Counter(o.get("clientOrderId") for o in _signed_all_orders(sim_url, creds["api_key"], creds["api_secret"]))
    lost = Counter(state for state in states.values() if state not in ACK_STATES)
    recoveries = [t.recovery_s for t in trials if t.recovery_s is not None]
    loads = [t.load_1m for t in trials]
    return ChaosResult(
        trials=sum(victims.values()),
        victims=dict(sorted(victims.items())),
        orders_expected=len(states),
        orders_lost=sum(lost.values()),
        orders_duplicated=sum(n - 1 for cid, n in venue.items() if cid in client_ids and n > 1)
        + sum(max(total - 1, 0) for _, _, total in per_alert),
        alerts_sent=traffic.alerts_sent,
        alerts_accepted=traffic.alerts_accepted,
        alerts_lost=max(traffic.alerts_accepted - sum(1 for _, acked, _ in per_alert if acked == 1), 0),
        unhedged_arb_legs=unhedged_arb_legs(),
        recovery_p50_s=rounded(percentile(recoveries, 0.5)),
        recovery_p99_s=rounded(percentile(recoveries, 0.99)),
        recovery_max_s=rounded(max(recoveries, default=None)),
        not_recovered=sum(1 for t in trials if t.recovery_s is None),
        lost_detail=dict(lost),
        phases_p50_s=phase_summary(trials, 0.5),
        phases_p99_s=phase_summary(trials, 0.99),
        start_cpu_p50_s=rounded(percentile([t.start_cpu_s for t in trials if t.start_cpu_s is not None], 0.5)),
        recovery_max_by_victim={
            victim: rounded(max(t.recovery_s or RECOVERY_TIMEOUT_S for t in trials if t.victim == victim))
            for victim in sorted(victims)
        },
        load_1m_min_max=(min(loads), max(loads)) if loads else None,
    )
