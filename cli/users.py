"""`aristobot user create|list|disable|enable|passwd`: accounts (there is no open sign-up)."""

from __future__ import annotations

import click

from cli.errors import fail


@click.group("user")
def user_group() -> None:
    """Accounts (there is no open sign-up)."""


@user_group.command("create")
@click.argument("username")
@click.option("--admin", is_flag=True, help="Give access to the admin pages.")
@click.option("--password", envvar="ARISTOBOT_NEW_PASSWORD", help="Default: generated and printed once.")
def user_create(username: str, admin: bool, password: str | None) -> None:
    from core import accounts
    from core.infra.db import session_scope

    password = password or accounts.generate_password()
    try:
        with session_scope() as session:
            accounts.create_user(session, username, password, is_admin=admin)
    except accounts.AccountError as exc:
        fail(str(exc))
    click.echo(f"created {'admin' if admin else 'trader'} {username!r}; password: {password}")


@user_group.command("list")
def user_list() -> None:
    from core import accounts
    from core.infra.db import new_session

    with new_session() as session:
        for account in accounts.list_users(session):
            role = "admin" if account.is_admin else "trader"
            state = "active" if account.is_active else "disabled"
            click.echo(f"{account.id:>4}  {account.username:<24} {role:<7} {state}")


@user_group.command("disable")
@click.argument("username")
@click.option("--cancel-orders", is_flag=True, help="Also cancel every open order of the user.")
def user_disable(username: str, cancel_orders: bool) -> None:
    """Block the user's logins and pause their bots and webhooks."""
    _set_active(username, False, cancel_orders)


@user_group.command("enable")
@click.argument("username")
def user_enable(username: str) -> None:
    _set_active(username, True)


def _set_active(username: str, active: bool, cancel_orders: bool = False) -> None:
    from core import accounts
    from core.infra.db import session_scope
    from core.orders import dispatch
    from core.stop import open_orders

    try:
        with session_scope() as session:
            account, paused = accounts.set_active(session, username, active)
            to_cancel = [o.id for o in open_orders(session, account.id)] if cancel_orders else []
    except accounts.AccountError as exc:
        fail(str(exc))
    queued = sum(dispatch.enqueue_cancel(order_id) for order_id in to_cancel)
    extra = f"; {paused}" if paused else ""
    extra += f"; {queued} open order(s) sent for cancelling" if cancel_orders else ""
    click.echo(f"{username} {'enabled' if active else 'disabled'}{extra}")


@user_group.command("passwd")
@click.argument("username")
@click.option("--password", envvar="ARISTOBOT_NEW_PASSWORD", help="Default: generated and printed once.")
def user_passwd(username: str, password: str | None) -> None:
    from core import accounts
    from core.infra.db import session_scope

    password = password or accounts.generate_password()
    if len(password) < accounts.MIN_PASSWORD_LENGTH:
        fail(f"password must be at least {accounts.MIN_PASSWORD_LENGTH} characters")
    with session_scope() as session:
        account = accounts.find_user(session, username)
        if account is None:
            fail(f"no user {username!r}")
        account.set_password(password)
    click.echo(f"new password for {username!r}: {password}")
