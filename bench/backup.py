"""`aristobot bench backup --orders N`: what a backup, its verification and a restore cost for a database of
N orders and N fills (plus one order event per order).

A throwaway database (the app's schema at head) on the configured server is filled with generate_series,
then backed up, verified (scratch restore + row counts) and restored over itself (restore into a scratch
database, swap, migrate) with the same code as `aristobot backup`; everything is dropped at the end. The
platform's own database is never touched, so the platform may run meanwhile (it shares the machine's CPU).
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from core.backups.dump import create_backup
from core.backups.pg import Conn, site_from
from core.backups.restore import replace_database
from core.backups.verify import create_database, drop_database, verify_backup
from core.infra.config import get_settings
from core.infra.migrate import upgrade_database

FILL_SQL = [
    "insert into users (id, username, password_hash, is_admin, is_active, created_at) "
    "values (1, 'bench-backup', 'x', false, true, now())",
    "insert into broker_connections (id, user_id, venue, label, api_key_enc, api_secret_enc, testnet, created_at) "
    "values (1, 1, 'sim', 'bench', 'x', 'x', false, now())",
    """insert into orders (id, user_id, broker_id, client_order_id, venue_order_id, symbol, side, type, quantity,
        price, time_in_force, state, filled_quantity, average_price, source, created_at, updated_at)
       select g, 1, 1, 'ab' || g, 'v' || g, 'BTCUSDT', case when mod(g, 2) = 0 then 'buy' else 'sell' end, 'limit',
        0.001 + mod(g, 100) / 10000.0, 60000 + mod(g, 5000), 'GTC', 'filled', 0.001 + mod(g, 100) / 10000.0,
        60000 + mod(g, 5000), 'bot', now() - g * interval '1 second', now() - g * interval '1 second'
       from generate_series(1, %(n)s) g""",
    """insert into order_events (order_id, from_state, to_state, cause, detail, at)
       select g, 'open', 'filled', 'fill', '{}'::jsonb, now() - g * interval '1 second'
       from generate_series(1, %(n)s) g""",
    """insert into fills (order_id, user_id, broker_id, symbol, side, venue_trade_id, price, quantity, fee,
        fee_asset, traded_at)
       select g, 1, 1, 'BTCUSDT', case when mod(g, 2) = 0 then 'buy' else 'sell' end, 't' || g, 60000 + mod(g, 5000),
        0.001 + mod(g, 100) / 10000.0, 0.01, 'USDT', now() - g * interval '1 second'
       from generate_series(1, %(n)s) g""",
    "analyze orders, order_events, fills",
]


@dataclass
class BackupBenchResult:
    orders: int
    fills: int
    rows_total: int
    fill_s: float
    dump_s: float
    verify_s: float
    restore_s: float
    size_bytes: int
    verified: bool


def _fill(app: Conn, orders: int) -> None:
    with app.connect() as db:
        for statement in FILL_SQL:
            db.execute(statement, {"n": orders} if "%(n)s" in statement else None)


def bench_backup(orders: int) -> BackupBenchResult:
    site = site_from(get_settings())
    name = f"{site.app.dbname}_bench_{secrets.token_hex(4)}"
    folder = Path(tempfile.mkdtemp(prefix="aristobot-bench-backup-"))
    bench = replace(site, app=site.app.to(name), directory=folder)
    create_database(site, name)
    try:
        upgrade_database(bench.app.url())
        started = time.monotonic()
        _fill(bench.app, orders)
        fill_s = time.monotonic() - started
        started = time.monotonic()
        backup = create_backup(bench)
        dump_s = time.monotonic() - started
        started = time.monotonic()
        verified = verify_backup(bench, backup.dump)
        verify_s = time.monotonic() - started
        started = time.monotonic()
        previous = replace_database(bench, verified, name)
        restore_s = time.monotonic() - started
        if previous:
            drop_database(site, previous)
        return BackupBenchResult(
            orders=orders,
            fills=backup.manifest["tables"]["fills"],
            rows_total=backup.manifest["rows_total"],
            fill_s=round(fill_s, 2),
            dump_s=round(dump_s, 2),
            verify_s=round(verify_s, 2),
            restore_s=round(restore_s, 2),
            size_bytes=backup.manifest["size_bytes"],
            verified=verified.verified_ok,
        )
    finally:
        drop_database(site, name)
        shutil.rmtree(folder, ignore_errors=True)
