"""`aristobot ledger ...`: the fill ledger's own checks."""

from __future__ import annotations

import json

import click


@click.group("ledger")
def ledger_group() -> None:
    """The fill ledger: positions and P&L."""


@ledger_group.command("check")
@click.option("--user", "username", help="only this user (default: every user)")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def check_command(username: str | None, as_json: bool) -> None:
    """Recompute every bot's and webhook's position and P&L from the fills, as the Statistics page and
    as the bots and webhooks ask them: exit 1 on any disagreement."""
    from core.infra.db import new_session
    from core.ledger.check import check

    with new_session() as session:
        try:
            result = check(session, username)
        except LookupError as err:
            raise click.UsageError(str(err)) from None
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        click.echo(f"{result.positions_checked} position(s) checked, {len(result.disagreements)} disagreement(s)")
        for d in result.disagreements:
            click.echo(f"  {d.user} · {d.book}: {d.what}: statistics {d.statistics}, asked {d.asked}")
    if result.disagreements:
        raise SystemExit(1)
