"""The `aristobot` command line: the group, and every command area registered by a plain import (a renamed
or missing command module stops the command line at start with an ImportError, it never vanishes)."""

from __future__ import annotations

import click

from cli.backtest import backtest_command
from cli.backup import backup_group
from cli.bench import bench_group
from cli.candles import candles_group
from cli.db import db_group
from cli.deploy import deploy_group
from cli.ledger import ledger_group
from cli.orders import orders_group
from cli.processes import arb_command, feeds_command, run_command, sim_command
from cli.services import services_group
from cli.stop import flatten_command, halt_command, trading_group
from cli.users import user_group
from core.infra.config import ConfigError


class AristobotGroup(click.Group):
    """Turns expected start-up failures into one clear line and exit code 2."""

    def invoke(self, ctx):
        from core.infra.embedded_services import PortInUse

        try:
            return super().invoke(ctx)
        except (ConfigError, PortInUse) as exc:
            click.echo(f"aristobot: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=AristobotGroup)
def main() -> None:
    """Aristobot: self-hosted crypto trading platform."""


for command in (
    run_command,
    db_group,
    user_group,
    services_group,
    sim_command,
    arb_command,
    feeds_command,
    bench_group,
    backtest_command,
    candles_group,
    orders_group,
    halt_command,
    flatten_command,
    trading_group,
    backup_group,
    deploy_group,
    ledger_group,
):
    main.add_command(command)
