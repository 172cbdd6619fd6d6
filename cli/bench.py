"""`aristobot bench ...`: the benchmarks, which print JSON (see BENCHMARKS.md; the code is in bench/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from cli.processes import exec_module
from core.infra.config import get_settings

DEFAULT_WEBHOOK_REPORT = "docs/bench/webhook-latest.md"  # docs/bench/webhook.md is the curated history


@click.group("bench")
def bench_group() -> None:
    """Benchmarks that print JSON (see BENCHMARKS.md)."""


def _echo_fields(result: dict, width: int) -> None:
    for name, value in result.items():
        click.echo(f"{name:>{width}}: {value}")


@bench_group.command("backtest")
@click.option("--candles", "rows", default=1_000_000, show_default=True, type=click.IntRange(1000, 1_000_000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the default output is JSON too).")
@click.option("--skip-backtesting-py", is_flag=True, help="Time our engine only.")
@click.option("--skip-vectorbt", is_flag=True, help="No vectorbt peer (its numba compilation takes 15-35 s).")
def bench_backtest_command(rows: int, as_json: bool, skip_backtesting_py: bool, skip_vectorbt: bool) -> None:
    """SMA(10/30) cross and a stateful breakout over the 1M-candle speed series: our engine vs backtesting.py."""
    from bench.backtest_stateful import bench_backtest_cases

    started = datetime.now(UTC)
    report = bench_backtest_cases(rows, with_backtesting_py=not skip_backtesting_py, with_vectorbt=not skip_vectorbt)
    report["wall_seconds"] = round((datetime.now(UTC) - started) / timedelta(seconds=1), 2)
    click.echo(json.dumps(report, indent=None if as_json else 2))


@bench_group.command("backtest-grid")
@click.option("--candles", "rows", default=100_000, show_default=True, type=click.IntRange(1000, 1_000_000))
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Sandboxes at once [one per core].")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on one line.")
def bench_backtest_grid_command(rows: int, workers: int | None, as_json: bool) -> None:
    """A 100-run SMA grid through the grid engine of `aristobot backtest --grid`: every core with indicator
    reuse, beside one core without it."""
    from bench.backtest_grid import bench_backtest_grid

    report = bench_backtest_grid(rows, workers)
    click.echo(json.dumps(report, indent=None if as_json else 2))


@bench_group.command("backtest-web")
@click.option("--candles", "rows", default=10_000, show_default=True, type=click.IntRange(100, 130_000))
@click.option("--repeats", default=7, show_default=True, type=click.IntRange(1, 50))
@click.option("--json", "as_json", is_flag=True, help="One JSON object on one line.")
def bench_backtest_web_command(rows: int, repeats: int, as_json: bool) -> None:
    """Submit -> results page from the web, 10,000 candles: gunicorn + a Celery worker + Postgres + Redis."""
    from bench.backtest_web import WebJourneyError, bench_backtest_web

    try:
        report = bench_backtest_web(rows, repeats)
    except WebJourneyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(report, indent=None if as_json else 2))


@bench_group.command("feeds")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@click.option("--seconds", default=10.0, show_default=True, help="length of the sustained run")
@click.option("--rate", default=6000, show_default=True, help="offered messages per second")
@click.option("--symbols", default=50, show_default=True, help="symbols the messages are spread over")
def bench_feeds_command(as_json: bool, seconds: float, rate: int, symbols: int) -> None:
    """1m kline messages through parse -> aggregate -> Redis -> Postgres: msgs/s and p99 latency."""
    from bench.feeds import run_feed_bench

    result = run_feed_bench(seconds=seconds, rate=rate, symbols=symbols)
    if as_json:
        click.echo(json.dumps(result))
    else:
        for key, value in result.items():
            click.echo(f"{key}: {value}")


@bench_group.command("gateway")
@click.option("--n", "n", default=200, show_default=True, help="place+cancel round trips to time")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@click.option("--use-running-worker", is_flag=True, help="do not start a Celery worker (one is already running)")
def bench_gateway_command(n: int, as_json: bool, use_running_worker: bool) -> None:
    """Click-to-venue-ack latency of the order pipeline (web → Celery → adapter → simulator)."""
    from bench.gateway import isolated_redis_url, run_bench

    if use_running_worker:
        result = run_bench(n, own_worker=False).as_dict()
    else:
        # Our own worker on a private Redis database, so a running install's workers never take our tasks.
        env = dict(os.environ, REDIS_URL=isolated_redis_url(get_settings().redis_url))
        child = subprocess.run(
            [sys.executable, "-m", "bench.gateway", str(n)], env=env, capture_output=True, text=True, check=False
        )
        if child.returncode != 0:
            raise click.ClickException(f"bench failed: {child.stderr.strip().splitlines()[-1:]}")
        result = json.loads(child.stdout.strip().splitlines()[-1])
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for name in ("place", "cancel"):
        stats = result[name]
        click.echo(
            f"{name:6}  p50 {stats['p50_ms']:7.1f} ms   p99 {stats['p99_ms']:7.1f} ms   "
            f"max {stats['max_ms']:7.1f} ms   (n={result['n']})"
        )
    click.echo(f"target p99 < {result['target_p99_ms']:g} ms: {'met' if result['meets_target'] else 'NOT met'}")


@bench_group.command("reconcile")
@click.option(
    "--connections",
    default=60,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="idle simulator connections to reconcile (created on the first run, then reused)",
)
@click.option(
    "--busy-orders",
    default=500,
    show_default=True,
    type=click.IntRange(1, 5000),
    help="resting orders on one more connection (placed on the first run, then reused)",
)
@click.option("--sim-url", default=None, help="The running simulator (default: config.yaml sim).")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def bench_reconcile_command(connections: int, busy_orders: int, sim_url: str | None, as_json: bool) -> None:
    """What reconciliation costs: the venue's request budget (weight per minute) for N idle connections,
    one pass over a connection with 500 open orders, and the start-up pass over all of them."""
    from bench.reconcile import run

    result = asdict(run(sim_url or get_settings().sim_url, connections, busy_orders))
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        _echo_fields(result, 36)


@bench_group.command("statistics")
@click.option("--fills", default=200_000, show_default=True, type=click.IntRange(10, 5_000_000))
@click.option("--views", default=60, show_default=True, type=click.IntRange(1, 10_000), help="page views timed")
@click.option("--sim-url", default=None, help="The simulator the connections point at (default: config.yaml sim).")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def bench_statistics_command(fills: int, views: int, sim_url: str | None, as_json: bool) -> None:
    """The ledger rebuilt over N fills (ledger_rebuild_s, target < 5 s) and the Statistics page with a
    filter (page_p99_ms, target < 500 ms) for a trader with 20 bots on 5 connections over 2 years."""
    from bench.statistics import run

    result = asdict(run(sim_url or get_settings().sim_url, fills=fills, views=views))
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        _echo_fields(result, 22)


@bench_group.command("webhook")
@click.option("--rate", default=200, show_default=True, type=click.IntRange(1, 5000), help="Alerts per second.")
@click.option("--seconds", default=60.0, show_default=True, type=click.FloatRange(0.1, 3600), help="Burst length.")
@click.option("--url", "web_url", default=None, help="The running web app (default: config.yaml web host/port).")
@click.option("--sim-url", default=None, help="The running simulator (default: config.yaml sim).")
@click.option(
    "--accounts",
    default=None,
    type=click.IntRange(1, 500),
    help="Simulator accounts (one webhook each) to spread the alerts over "
    "(default: enough to stay under the venue's 100 orders / 10 s per account).",
)
@click.option(
    "--background-connections",
    default=60,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="More connections on the venue, each with a resting order reconciled during the run "
    "(created on the first run, then reused).",
)
@click.option(
    "--settle",
    default=600.0,
    show_default=True,
    help="Seconds to wait for the venue's acks (a burst above capacity is worked off meanwhile).",
)
@click.option("--report", default=DEFAULT_WEBHOOK_REPORT, show_default=True, help="Markdown report path ('' = none).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def bench_webhook_command(
    rate: int,
    seconds: float,
    web_url: str | None,
    sim_url: str | None,
    accounts: int | None,
    background_connections: int,
    settle: float,
    report: str,
    as_json: bool,
) -> None:
    """A burst of TradingView alerts: accepted, lost (must be 0), duplicate orders (must be 0), latencies."""
    from bench.webhook import run, write_markdown

    settings = get_settings()
    web_url = web_url or f"http://{settings.file.web.host}:{settings.file.web.port}"
    result = run(web_url, sim_url or settings.sim_url, rate, seconds, settle, accounts, background_connections)
    if report:
        path = Path(report)
        write_markdown(result, path if path.is_absolute() else settings.root / path)
    if as_json:
        click.echo(json.dumps(asdict(result), indent=2))
    else:
        _echo_fields(asdict(result), 22)
    if result.lost or result.duplicate_orders:
        raise SystemExit(1)


@bench_group.command("chaos")
@click.option(
    "--trials", default=30, show_default=True, type=click.IntRange(1, 1000), help="Processes killed, one per trial."
)
@click.option("--seed", default=16, show_default=True, help="Which process each trial kills (random, reproducible).")
@click.option("--url", "web_url", default=None, help="The running web app (default: config.yaml web host/port).")
@click.option("--sim-url", default=None, help="The running simulator (default: config.yaml sim).")
@click.option("--settle", default=300.0, show_default=True, help="Seconds for the last orders to be acknowledged.")
@click.option("--victims", default=None, help="Comma-separated processes to choose from (default: all nine).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def bench_chaos_command(
    trials: int,
    seed: int,
    web_url: str | None,
    sim_url: str | None,
    settle: float,
    victims: str | None,
    as_json: bool,
) -> None:
    """kill -9 a random process per trial under orders, alerts and bots: lost, duplicated, unhedged, recovery."""
    from bench.chaos import VICTIMS, run

    candidates = tuple(name.strip() for name in victims.split(",") if name.strip()) if victims else VICTIMS
    unknown = sorted(set(candidates) - set(VICTIMS)) if candidates else ["(none)"]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: not one of {', '.join(VICTIMS)}", param_hint="--victims")
    settings = get_settings()
    web_url = web_url or f"http://{settings.file.web.host}:{settings.file.web.port}"
    result = run(web_url, sim_url or settings.sim_url, settings.var_dir, trials, seed, settle, candidates)
    if as_json:
        click.echo(json.dumps(asdict(result), indent=2))
    else:
        _echo_fields(asdict(result), 20)
    if result.orders_lost or result.orders_duplicated or result.alerts_lost or result.unhedged_arb_legs:
        raise SystemExit(1)


@bench_group.command("arb", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def bench_arb() -> None:
    """Arbitrage engine latency (update-to-decision, detection-to-both-sent)."""
    exec_module("bench.arb", 3)


@bench_group.command("notify")
@click.option("--url", "web_url", default=None, help="The running web app (default: config.yaml web host/port).")
@click.option("--pages", default=3, show_default=True, type=click.IntRange(1, 50), help="Open pages (SSE streams).")
@click.option("--events", default=200, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def bench_notify_command(web_url: str | None, pages: int, events: int, as_json: bool) -> None:
    """From notify() to every open page of the user showing it: page_p99_ms (target < 200 ms)."""
    from bench.notify import run

    settings = get_settings()
    result = asdict(run(web_url or f"http://{settings.file.web.host}:{settings.file.web.port}", pages, events))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    _echo_fields(result, 14)


@bench_group.command("backup")
@click.option("--orders", default=1_000_000, show_default=True, type=click.IntRange(1, 20_000_000))
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def bench_backup_command(orders: int, as_json: bool) -> None:
    """Backup, verify and restore of a throwaway database of N orders, N fills and N order events."""
    from bench.backup import bench_backup
    from core.backups.pg import BackupError
    from core.infra.logs import setup_logging

    setup_logging("bench", "WARNING")
    try:
        result = asdict(bench_backup(orders))
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(result))
    else:
        _echo_fields(result, 12)


@bench_group.command("parity")
@click.option("--candles", "candles_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--strategy", "strategy_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--param", "param_items", multiple=True, metavar="NAME=VALUE", help="Override a strategy parameter.")
@click.option("--rows", default=2000, show_default=True, help="1m candles to replay")
@click.option("--skip", default=0, show_default=True, help="candles of the file to skip first")
@click.option("--speed", default=60.0, show_default=True, help="market seconds per wall second")
@click.option("--redis-db", default=14, show_default=True, help="the private Redis database the bench empties and uses")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def bench_parity_command(
    candles_path: Path,
    strategy_path: Path,
    param_items: tuple[str, ...],
    rows: int,
    skip: int,
    speed: float,
    redis_db: int,
    as_json: bool,
) -> None:
    """A strategy live (replaying simulator → feeds → bot → orders → ledger) vs its backtest, trade by trade."""
    from cli.backtest import parse_params

    options = {
        "candles": str(candles_path.resolve()),
        "strategy": str(strategy_path.resolve()),
        "params": parse_params(param_items),
        "rows": rows,
        "skip": skip,
        "speed": speed,
    }
    result = _run_isolated("bench.parity", json.dumps(options), redis_db)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    result.pop("mismatches")
    _echo_fields(result, 22)


def _run_isolated(module: str, argument: str, redis_db: int, *more: str) -> dict:
    """Run a bench module in a child on a private Redis database (a running install's workers never take
    the bench bots' ticks); returns the JSON object it prints last."""
    from bench.gateway import isolated_redis_url

    env = dict(os.environ, REDIS_URL=isolated_redis_url(get_settings().redis_url, redis_db))
    child = subprocess.run(
        [sys.executable, "-m", module, argument, *more], env=env, capture_output=True, text=True, check=False
    )
    if child.returncode != 0:
        raise click.ClickException(f"bench failed: {child.stderr.strip().splitlines()[-3:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


@bench_group.command("bots")
@click.option(
    "--minutes", default=6, show_default=True, help="minutes of closes to measure (both timeframes close every 3rd)"
)
@click.option("--redis-db", default=12, show_default=True, help="the private Redis database the bench empties and uses")
@click.option(
    "--pool",
    type=click.Choice(["threads", "prefork"]),
    default="threads",
    show_default=True,
    help="the bots worker's pool: threads (the Procfile's) or prefork (2 processes, as before issue 18's fix)",
)
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def bench_bots_command(minutes: int, redis_db: int, pool: str, as_json: bool) -> None:
    """20 bots on 20 symbols and two timeframes closing together: close-to-order latency and missed ticks."""
    result = _run_isolated("bench.bots", str(minutes), redis_db, pool)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    _echo_fields(result, 22)
