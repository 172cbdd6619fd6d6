"""The simulator's own books on disk (a JSON file), so a restart keeps balances, orders and fills.

This is the venue's side of the world: it holds the venue's copy of API secrets, like any exchange
does; the file is written atomically and readable by its owner only.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from sim.spot.engine import MatchingEngine
from sim.spot.orders import (
    Account,
    Balance,
    Fill,
    Order,
    OrderList,
    OrderType,
    Side,
    Status,
    TimeInForce,
)

FORMAT_VERSION = 1
_ENUMS = {"side": Side, "type": OrderType, "status": Status, "time_in_force": TimeInForce}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    return value.value if hasattr(value, "value") else value


def _fill_dict(fill: Fill) -> dict:
    return {f.name: _plain(getattr(fill, f.name)) for f in fields(Fill)}


def _order_dict(order: Order) -> dict:
    row = {f.name: _plain(getattr(order, f.name)) for f in fields(Order) if f.name != "fills"}
    row["fills"] = [fill.trade_id for fill in order.fills]
    return row


def save_state(path: Path, engine: MatchingEngine, credentials: list[tuple[str, str, str, int]]) -> None:
    document = {
        "version": FORMAT_VERSION,
        "credentials": [{"api_key": k, "api_secret": s, "account_id": a, "uid": u} for k, s, a, u in credentials],
        "accounts": {
            a.account_id: {asset: [str(b.free), str(b.locked)] for asset, b in a.balances.items()}
            for a in engine.accounts.values()
        },
        "orders": [_order_dict(o) for o in engine.orders.values()],
        "order_lists": [{f.name: getattr(ol, f.name) for f in fields(OrderList)} for ol in engine.order_lists.values()],
        "fills": [_fill_dict(f) for f in engine.fills],
        "next": {"order": engine.next_order_id, "trade": engine.next_trade_id, "list": engine.next_list_id},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".state-", suffix=".json")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(document, out)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _typed(cls: type, row: dict) -> dict:
    values = {}
    for f in fields(cls):
        if f.name not in row:
            continue
        value = row[f.name]
        if f.name in _ENUMS and value is not None:
            value = _ENUMS[f.name](value)
        elif f.type in ("Decimal", Decimal) and value is not None:
            value = Decimal(value)
        values[f.name] = value
    return values


def load_state(path: Path, engine: MatchingEngine) -> list[tuple[str, str, str, int]]:
    """Fills engine from the file; returns the credentials (api_key, secret, account_id, uid)."""
    document = json.loads(path.read_text())
    if document.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported simulator state version {document.get('version')!r}")
    for account_id, assets in document["accounts"].items():
        engine.accounts[account_id] = Account(
            account_id, {asset: Balance(Decimal(free), Decimal(locked)) for asset, (free, locked) in assets.items()}
        )
    fills = {row["trade_id"]: Fill(**_typed(Fill, row)) for row in document["fills"]}
    engine.fills = list(fills.values())
    for row in document["orders"]:
        values = _typed(Order, row)
        values["fills"] = [fills[i] for i in row["fills"] if i in fills]
        order = Order(**values)
        engine.orders[order.order_id] = order
    for row in document["order_lists"]:
        engine.order_lists[row["order_list_id"]] = OrderList(**row)
    engine.restore_index()
    engine.next_order_id = document["next"]["order"]
    engine.next_trade_id = document["next"]["trade"]
    engine.next_list_id = document["next"]["list"]
    return [(c["api_key"], c["api_secret"], c["account_id"], c["uid"]) for c in document["credentials"]]
