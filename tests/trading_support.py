"""Shared by the order pipeline, trading page and journey tests: a funded trader on a real simulator
with a broker connection to it, and a proxy that garbles the venue's answers to new orders."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from core import brokers
from core.infra.db import session_scope
from core.models import Order
from core.orders.submit import OrderIntent, record_order
from sim.spot.server import SimHandle
from tests.support import remember_secret


@dataclass
class Trader:
    user_id: int
    broker_id: int
    api_key: str
    account_id: str
    sim: SimHandle
    api_secret: str = field(default="", repr=False)

    def order(self, **fields) -> int:
        """Record an order in state `new`, as the ticket does; returns its id."""
        values = {
            "broker_id": self.broker_id,
            "symbol": "BTCUSDT",
            "side": "buy",
            "type": "market",
            "quantity": Decimal("0.01"),
        } | fields
        with session_scope() as session:
            return record_order(session, self.user_id, OrderIntent(**values)).id

    def at_sim(self, order_id: int, symbol: str = "BTCUSDT") -> list:
        """The simulator's orders carrying this order's client order id (how many really exist)."""
        with session_scope() as session:
            client_id = session.get(Order, order_id).client_order_id
        return [
            o
            for o in list(self.sim.state.engine.orders.values())
            if o.account_id == self.account_id
            and o.symbol == symbol
            and o.client_order_id in (client_id, f"{client_id}-tp", f"{client_id}-sl")
        ]

    def reload(self, order_id: int) -> Order:
        with session_scope() as session:
            order = session.get(Order, order_id)
            order.events  # noqa: B018 - load the history before the session closes
            order.fills  # noqa: B018
            return order

    def by_hand(self):
        """This account's own client at the venue (the exchange's app): Aristobot never sees its requests."""
        return self.sim.by_hand(self.api_key, self.api_secret)

    def point_at(self, base_url: str | None) -> None:
        with session_scope() as session:
            broker = session.get(brokers.BrokerConnection, self.broker_id)
            broker.base_url = base_url
        brokers.forget_exchange(self.broker_id)


def make_trader(make_user, sim: SimHandle, balances: dict[str, str] | None = None, user=None) -> Trader:
    """A trader (`user`, else a new one) with a "Sim" connection to `sim` whose markets are loaded."""
    user = user or make_user()[0]
    api_key = f"k{secrets.token_hex(8)}"
    api_secret = remember_secret(f"s-{secrets.token_urlsafe(18)}")
    remember_secret(api_key)
    answer = sim.create_account(api_key, api_secret, balances or {"USDT": "100000", "BTC": "1"})
    with session_scope() as session:
        broker = brokers.create_connection(
            session,
            user.id,
            brokers.ConnectionInput(venue="sim", label="Sim", api_key=api_key, api_secret=api_secret, base_url=sim.url),
        )
        brokers.load_markets(session, broker)
        broker_id = broker.id
    return Trader(user.id, broker_id, api_key, answer["account_id"], sim, api_secret)


class GarblingProxy:
    """Forwards every request to the simulator; answers POST /api/v3/order with a non-JSON body and,
    when `lookups_down`, answers order queries with HTTP 503 (with `pad_lookups`, a huge JSON answer)."""

    def __init__(self, target: str):
        self.target = target
        self.garble_orders = True
        self.lookups_down = False
        self.pad_lookups = 0  # characters of junk added to each order query's answer (a huge answer)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                if proxy.lookups_down and self.command == "GET" and self.path.startswith("/api/v3/order?"):
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("x-mbx-apikey", "content-type")}
                answer = requests.request(
                    self.command, proxy.target + self.path, data=body, headers=headers, timeout=10
                )
                data = answer.content
                if proxy.garble_orders and self.command == "POST" and self.path.startswith("/api/v3/order?"):
                    data = b"<html>upstream hiccup</html>"
                if proxy.pad_lookups and self.command == "GET" and self.path.startswith("/api/v3/order?"):
                    data = data[:-1] + b', "junk": "' + b"x" * proxy.pad_lookups + b'"}'
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _forward

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
