"""`aristobot bench webhook`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from core.config import get_settings

DEFAULT_REPORT = "docs/bench/webhook-latest.md"  # docs/bench/webhook.md is the curated history


@click.command("webhook")
@click.option("--rate", default=200, show_default=True, type=click.IntRange(1, 5000), help="Alerts per second.")
@click.option("--seconds", default=60.0, show_default=True, type=click.FloatRange(0.1, 3600), help="Burst length.")
@click.option("--url", "web_url", default=None, help="The running web app (default: config.yaml web host/port).")
@click.option("--sim-url", default=None, help="The running simulator (default: config.yaml sim).")
@click.option("--accounts", default=None, type=click.IntRange(1, 500),
              help="Simulator accounts (one webhook each) to spread the alerts over "
                   "(default: enough to stay under the venue's 100 orders / 10 s per account).")
@click.option("--background-connections", default=60, show_default=True, type=click.IntRange(0, 1000),
              help="More connections on the venue, each with a resting order reconciled during the run "
                   "(created on the first run, then reused).")
@click.option("--settle", default=600.0, show_default=True,
              help="Seconds to wait for the venue's acks (a burst above capacity is worked off meanwhile).")
@click.option("--report", default=DEFAULT_REPORT, show_default=True, help="Markdown report path ('' = none).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def bench_webhook_command(rate: int, seconds: float, web_url: str | None, sim_url: str | None,
                          accounts: int | None, background_connections: int, settle: float, report: str,
                          as_json: bool) -> None:
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
        for name, value in asdict(result).items():
            click.echo(f"{name:>22}: {value}")
    if result.lost or result.duplicate_orders:
        raise SystemExit(1)
