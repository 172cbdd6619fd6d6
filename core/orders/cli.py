"""`aristobot bench gateway`, `aristobot bench reconcile` and `aristobot orders ...`."""

from __future__ import annotations

import json

import click


@click.command("gateway")
@click.option("--n", "n", default=200, show_default=True, help="place+cancel round trips to time")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@click.option("--use-running-worker", is_flag=True, help="do not start a Celery worker (one is already running)")
def bench_gateway_command(n: int, as_json: bool, use_running_worker: bool) -> None:
    """Click-to-venue-ack latency of the order pipeline (web → Celery → adapter → simulator)."""
    from core.orders.bench import isolated_redis_url, run_bench

    if use_running_worker:
        result = run_bench(n, own_worker=False).as_dict()
    else:
        # Our own worker on a private Redis database, so a running install's workers never take our tasks.
        import os
        import subprocess
        import sys

        from core.config import get_settings

        env = dict(os.environ, REDIS_URL=isolated_redis_url(get_settings().redis_url))
        child = subprocess.run([sys.executable, "-m", "core.orders.bench", str(n)], env=env, capture_output=True,
                               text=True, check=False)
        if child.returncode != 0:
            raise click.ClickException(f"bench failed: {child.stderr.strip().splitlines()[-1:]}")
        result = json.loads(child.stdout.strip().splitlines()[-1])
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for name in ("place", "cancel"):
        stats = result[name]
        click.echo(f"{name:6}  p50 {stats['p50_ms']:7.1f} ms   p99 {stats['p99_ms']:7.1f} ms   "
                   f"max {stats['max_ms']:7.1f} ms   (n={result['n']})")
    click.echo(f"target p99 < {result['target_p99_ms']:g} ms: {'met' if result['meets_target'] else 'NOT met'}")


@click.command("reconcile")
@click.option("--connections", default=60, show_default=True, type=click.IntRange(1, 1000),
              help="idle simulator connections to reconcile (created on the first run, then reused)")
@click.option("--sim-url", default=None, help="The running simulator (default: config.yaml sim).")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def bench_reconcile_command(connections: int, sim_url: str | None, as_json: bool) -> None:
    """What reconciliation costs the venue's request budget (weight per minute) for N idle connections."""
    from dataclasses import asdict

    from core.config import get_settings
    from core.orders.reconcile_bench import run

    result = asdict(run(sim_url or get_settings().sim_url, connections))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for name, value in result.items():
        click.echo(f"{name:>36}: {value}")


@click.group("orders")
def orders_group() -> None:
    """Order pipeline operations."""


@orders_group.command("reconcile")
@click.option("--broker", "broker_id", type=int, help="only this broker connection")
def reconcile_command(broker_id: int | None) -> None:
    """Reconcile our orders with the venues now (what the schedule does every 30 s)."""
    from core.orders import dispatch, reconcile

    reports = [reconcile.reconcile_broker(broker_id, dispatch.enqueue_order)] if broker_id else \
        reconcile.reconcile_all(dispatch.enqueue_order)
    click.echo(json.dumps([reconcile.report_dict(r) for r in reports], indent=2))
