"""The `aristobot` command line."""

from __future__ import annotations

import importlib
import os
import sys

import click

from core.config import ConfigError, get_settings


class AristobotGroup(click.Group):
    """Turns expected start-up failures into one clear line and exit code 2."""

    def invoke(self, ctx):
        from core.services import PortInUse

        try:
            return super().invoke(ctx)
        except (ConfigError, PortInUse) as exc:
            click.echo(f"aristobot: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=AristobotGroup)
def main() -> None:
    """Aristobot: self-hosted crypto trading platform."""


@main.command()
def run() -> None:
    """Start everything (embedded Postgres/Redis unless configured, simulator, web, workers...)."""
    from core.runner import run as run_all

    sys.exit(run_all())


# --- db -------------------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (creates the database on a fresh server)."""
    from core.db import wait_for_database
    from core.logs import setup_logging
    from core.migrate import upgrade_database

    setup_logging("cli", get_settings().file.log_level)
    wait_for_database(timeout=30, process="cli", server_only=True)
    upgrade_database()
    click.echo("database is up to date")


@db.command("wait")
@click.option("--timeout", default=120.0, show_default=True)
def db_wait(timeout: float) -> None:
    """Wait until the database is reachable and migrated (Procfile processes start with this)."""
    from core.logs import setup_logging
    from core.migrate import wait_for_schema

    setup_logging("cli", get_settings().file.log_level)
    try:
        wait_for_schema(timeout)
    except TimeoutError as exc:
        _fail(str(exc))


@db.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (developers)."""
    from core.migrate import make_revision

    make_revision(message)


# --- users ----------------------------------------------------------------------------------------
@main.group()
def user() -> None:
    """Accounts (there is no open sign-up)."""


def _fail(message: str) -> None:
    click.echo(f"aristobot: {message}", err=True)
    sys.exit(1)


@user.command("create")
@click.argument("username")
@click.option("--admin", is_flag=True, help="Give access to the admin pages.")
@click.option("--password", envvar="ARISTOBOT_NEW_PASSWORD", help="Default: generated and printed once.")
def user_create(username: str, admin: bool, password: str | None) -> None:
    from core import accounts
    from core.db import session_scope

    password = password or accounts.generate_password()
    try:
        with session_scope() as session:
            accounts.create_user(session, username, password, is_admin=admin)
    except accounts.AccountError as exc:
        _fail(str(exc))
    click.echo(f"created {'admin' if admin else 'trader'} {username!r}; password: {password}")


@user.command("list")
def user_list() -> None:
    from core import accounts
    from core.db import new_session

    with new_session() as session:
        for account in accounts.list_users(session):
            role = "admin" if account.is_admin else "trader"
            state = "active" if account.is_active else "disabled"
            click.echo(f"{account.id:>4}  {account.username:<24} {role:<7} {state}")


@user.command("disable")
@click.argument("username")
@click.option("--cancel-orders", is_flag=True, help="Also cancel every open order of the user.")
def user_disable(username: str, cancel_orders: bool) -> None:
    """Block the user's logins and pause their bots and webhooks."""
    _set_active(username, False, cancel_orders)


@user.command("enable")
@click.argument("username")
def user_enable(username: str) -> None:
    _set_active(username, True)


def _set_active(username: str, active: bool, cancel_orders: bool = False) -> None:
    from core import accounts
    from core.db import session_scope
    from core.orders import dispatch
    from core.stop import open_orders

    try:
        with session_scope() as session:
            account, paused = accounts.set_active(session, username, active)
            to_cancel = [o.id for o in open_orders(session, account.id)] if cancel_orders else []
    except accounts.AccountError as exc:
        _fail(str(exc))
    queued = sum(dispatch.cancel(order_id) for order_id in to_cancel)
    extra = f"; {paused}" if paused else ""
    extra += f"; {queued} open order(s) sent for cancelling" if cancel_orders else ""
    click.echo(f"{username} {'enabled' if active else 'disabled'}{extra}")


@user.command("passwd")
@click.argument("username")
@click.option("--password", envvar="ARISTOBOT_NEW_PASSWORD", help="Default: generated and printed once.")
def user_passwd(username: str, password: str | None) -> None:
    from core import accounts
    from core.db import session_scope

    password = password or accounts.generate_password()
    if len(password) < accounts.MIN_PASSWORD_LENGTH:
        _fail(f"password must be at least {accounts.MIN_PASSWORD_LENGTH} characters")
    with session_scope() as session:
        account = accounts.find_user(session, username)
        if account is None:
            _fail(f"no user {username!r}")
        account.set_password(password)
    click.echo(f"new password for {username!r}: {password}")


# --- embedded services and processes -------------------------------------------------------------
@main.group()
def services() -> None:
    """Embedded infrastructure run by `make run` when no external server is configured."""


def _generated_secret(value: str | None, name: str) -> str:
    if not value:
        raise ConfigError(f"{get_settings().env_path}: {name}: is required but missing (run `make run` once to "
                          "generate it)")
    return value


@services.command("postgres")
def services_postgres() -> None:
    from core.embedded_pg import serve_postgres

    settings = get_settings()
    password = _generated_secret(settings.secrets.POSTGRES_APP_PASSWORD, "POSTGRES_APP_PASSWORD")
    sys.exit(serve_postgres(settings.var_dir / "pg", settings.file.embedded.postgres_port, password))


@services.command("redis")
def services_redis() -> None:
    from core.services import serve_redis

    settings = get_settings()
    password = _generated_secret(settings.secrets.REDIS_PASSWORD, "REDIS_PASSWORD")
    sys.exit(serve_redis(settings.var_dir / "redis", settings.file.embedded.redis_port, password))


@main.command()
@click.option("--port", type=int, default=None, help="Default: sim.port in config.yaml.")
def sim(port: int | None) -> None:
    """Run the exchange simulator (Binance protocol; Vest and Paradex faces for the arb)."""
    from core.exchanges.sim.server import serve
    from core.heartbeat import start_heartbeat
    from core.logs import setup_logging

    settings = get_settings()
    setup_logging("sim", settings.file.log_level)
    start_heartbeat("sim")
    serve(host=settings.file.sim.host, port=port or settings.file.sim.port, seed=settings.file.sim.seed,
          state_dir=settings.var_dir / "sim")


def _exec_process(package: str) -> None:
    """Process packages are started, never imported, from core (they depend on core, not the reverse)."""
    os.execv(sys.executable, [sys.executable, "-m", package, *sys.argv[2:]])


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def arb() -> None:
    """Run the Vest/Paradex arbitrage engine (same as the Procfile `arb` process)."""
    _exec_process("arb")


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def feeds() -> None:
    """Run the heartbeat (live candles) process."""
    _exec_process("feeds")


@main.group()
def bench() -> None:
    """Benchmarks that print JSON (see BENCHMARKS.md)."""


def _add_optional_commands() -> None:
    """Commands contributed by domain packages as they land (backtest, candles, bench ...)."""
    for module_name, attr, group in (
        ("core.backtest.cli", "backtest_command", main),
        ("core.backtest.cli", "bench_backtest_command", bench),
        ("core.candles.cli", "candles_group", main),
        ("core.candles.cli", "bench_feeds_command", bench),
        ("core.orders.cli", "bench_gateway_command", bench),
        ("core.orders.cli", "bench_reconcile_command", bench),
        ("core.orders.cli", "orders_group", main),
        ("core.stop_cli", "halt_command", main),
        ("core.stop_cli", "flatten_command", main),
        ("core.stop_cli", "trading_group", main),
        ("core.webhooks.cli", "bench_webhook_command", bench),
        ("core.backtest.web_bench", "bench_backtest_web_command", bench),
        ("core.notifications.cli", "bench_notify_command", bench),
    ):
        try:
            command = getattr(importlib.import_module(module_name), attr)
        except ModuleNotFoundError as exc:
            if not (module_name + ".").startswith(f"{exc.name}."):
                raise
            continue
        group.add_command(command)


@bench.command("arb", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def bench_arb() -> None:
    """Arbitrage engine latency (update-to-decision, detection-to-both-sent)."""
    os.execv(sys.executable, [sys.executable, "-m", "arb.bench", *sys.argv[3:]])


_add_optional_commands()

if __name__ == "__main__":
    main()
