"""Operator commands to stop trading: `aristobot halt`, `aristobot flatten`, `aristobot trading halt|resume`."""

from __future__ import annotations

import sys

import click


def _user_id(username: str) -> int:
    from core import accounts
    from core.infra.db import new_session

    with new_session() as session:
        user = accounts.find_user(session, username)
        if user is None:
            click.echo(f"aristobot: no user {username!r}", err=True)
            sys.exit(1)
        return user.id


@click.command("halt")
@click.option("--user", "username", required=True, help="Pause every bot and webhook of this user.")
def halt_command(username: str) -> None:
    """Pause all of a user's automation (alerts then arrive stored and refused with "paused")."""
    from core.infra.db import session_scope
    from core.stop import pause_all

    user_id = _user_id(username)
    with session_scope() as session:
        report = pause_all(session, user_id)
    click.echo(f"{username}: {report}")


@click.command("flatten")
@click.option("--user", "username", required=True)
@click.option("--broker", "broker_ids", type=int, multiple=True, help="Broker connection id (default: all).")
@click.option("--yes", is_flag=True, help="Do it without showing the plan and asking first.")
def flatten_command(username: str, broker_ids: tuple[int, ...], yes: bool) -> None:
    """Pause the user's automation, cancel every open order and close every position on the brokers.
    Exit code 1 when a broker failed (what is left there is listed; run it again to retry)."""
    from core import flatten
    from core.infra.db import new_session

    user_id = _user_id(username)
    chosen = list(broker_ids) or None
    with new_session() as session:
        plans = flatten.plan(session, user_id, chosen)
    for broker in plans:
        click.echo(f"broker {broker.broker_id} {broker.label} ({broker.venue}):")
        for item in (*broker.cancels, *broker.closes):
            click.echo(f"  {item.describe()}")
        if not broker.cancels and not broker.closes:
            click.echo("  nothing open")
    if not yes and not click.confirm("Flatten now?"):
        sys.exit(1)
    results = flatten.flatten(user_id, chosen)
    for result in results:
        state = f"FAILED: {result.error}" if result.failed else "done"
        click.echo(
            f"broker {result.broker_id} {result.label}: {state}; cancelled {len(result.cancelled)} "
            f"order(s), close orders {result.close_orders}"
        )
        for note in result.notes:
            click.echo(f"  left: {note}" if result.failed else f"  {note}")
    sys.exit(1 if any(result.failed for result in results) else 0)


@click.group("trading")
def trading_group() -> None:
    """The global trading halt (no new order from any source; cancels and reconciliation go on)."""


@trading_group.command("halt")
def trading_halt() -> None:
    _switch(True)


@trading_group.command("resume")
def trading_resume() -> None:
    _switch(False)


def _switch(halted: bool) -> None:
    from core.halt import set_trading_halted
    from core.infra.db import session_scope

    with session_scope() as session:
        set_trading_halted(session, halted)
    click.echo("trading is halted" if halted else "trading resumed")
