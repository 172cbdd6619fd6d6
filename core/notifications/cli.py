"""`aristobot bench notify`."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from core.config import get_settings


@click.command("notify")
@click.option("--url", "web_url", default=None, help="The running web app (default: config.yaml web host/port).")
@click.option("--pages", default=3, show_default=True, type=click.IntRange(1, 50), help="Open pages (SSE streams).")
@click.option("--events", default=200, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def bench_notify_command(web_url: str | None, pages: int, events: int, as_json: bool) -> None:
    """From notify() to every open page of the user showing it: page_p99_ms (target < 200 ms)."""
    from core.notifications.bench import run

    settings = get_settings()
    result = asdict(run(web_url or f"http://{settings.file.web.host}:{settings.file.web.port}", pages, events))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for name, value in result.items():
        click.echo(f"{name:>14}: {value}")
