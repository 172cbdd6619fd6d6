"""`aristobot orders ...`: order pipeline operations."""

from __future__ import annotations

import json

import click


@click.group("orders")
def orders_group() -> None:
    """Order pipeline operations."""


@orders_group.command("reconcile")
@click.option("--broker", "broker_id", type=int, help="only this broker connection")
def reconcile_command(broker_id: int | None) -> None:
    """Reconcile our orders with the venues now (what the schedule does every 30 s)."""
    from core import reconciliation
    from core.orders import dispatch, reconcile

    reports = (
        [reconciliation.reconcile_broker(broker_id, dispatch.enqueue_order)]
        if broker_id
        else reconciliation.reconcile_all(dispatch.enqueue_order)
    )
    click.echo(json.dumps([reconcile.report_dict(r) for r in reports], indent=2))
