"""`aristobot candles import|download`: historical candles into the database."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click

from cli.dates import parse_date_ms
from core.candles.csv_io import CandleFileError
from core.exchanges.errors import ExchangeError
from core.infra.config import TIMEFRAMES


class _Bar:
    """A click progress bar driven by (done, total) callbacks."""

    def __init__(self, label: str, enabled: bool):
        self.label, self.enabled, self.bar, self.shown = label, enabled, None, 0

    def __call__(self, done: int, total: int, _what: str) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.shown)
        self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def _load(label: str, as_json: bool, load: Callable[[_Bar], object]) -> None:
    """Run an import or download with a progress bar (not in --json mode); bad input is one clear line."""
    from core.candles.loading import ImportRefused, LoadError

    bar = _Bar(label, not as_json)
    refused = None
    try:
        report = load(bar)
    except ImportRefused as exc:
        report, refused = exc.report, exc
    except (LoadError, CandleFileError, ExchangeError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        bar.close()
    _finish(report, as_json)  # a refused import's report lists every refused row by line
    if refused is not None:
        raise click.ClickException(str(refused))


def _finish(report, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.as_dict()))
        return
    click.echo(report.summary())
    for gap in report.gaps[:20]:
        click.echo(f"  gap: {gap.missing} missing after {gap.last_before_ms} (next {gap.next_after_ms})")
    for bad in report.bad_rows[:50]:
        click.echo(f"  line {bad.line}: {bad.error}")
    if len(report.bad_rows) > 50:
        click.echo(f"  ... and {len(report.bad_rows) - 50} more bad rows")


@click.group("candles")
def candles_group() -> None:
    """Load historical candles into the database (idempotent)."""


@candles_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--venue", default="binance", show_default=True, help="venue the candles come from")
@click.option("--symbol", default=None, help="e.g. BTCUSDT (default: from a file name like BTCUSDT-1m.csv)")
@click.option(
    "--tf", "timeframe", type=click.Choice(TIMEFRAMES), default=None, help="timeframe (default: from the file name)"
)
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def import_command(file: str, venue: str, symbol: str | None, timeframe: str | None, as_json: bool) -> None:
    """Import a candle CSV (open_time,open,high,low,close,volume, or a Binance kline dump; ms or µs)."""
    from core.candles.loading import import_candles_file

    _load(
        "importing",
        as_json,
        lambda bar: import_candles_file(
            file, venue=venue, symbol=symbol.upper() if symbol else None, timeframe=timeframe, progress=bar
        ),
    )


@candles_group.command("download")
@click.option("--venue", required=True, help="sim, binance, bitget or kraken")
@click.option("--symbol", required=True)
@click.option("--tf", "timeframe", type=click.Choice(TIMEFRAMES), required=True)
@click.option("--from", "start", required=True, help="YYYY-MM-DD[THH:MM] (UTC) or ms")
@click.option("--to", "end", required=True, help="YYYY-MM-DD (the whole day), YYYY-MM-DDTHH:MM (UTC) or ms, inclusive")
@click.option("--base-url", default=None, help="REST base URL (default: the venue's; the simulator's for sim)")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def download_command(
    venue: str, symbol: str, timeframe: str, start: str, end: str, base_url: str | None, as_json: bool
) -> None:
    """Download candles over REST, page by page (resumes where an interrupted run stopped)."""
    from core.candles.loading import download_candles

    start_ms, end_ms = parse_date_ms(start), parse_date_ms(end, end_of_day=True)
    _load(
        "downloading",
        as_json,
        lambda bar: download_candles(
            venue, symbol.upper(), timeframe, start_ms, end_ms, progress=bar, base_url=base_url
        ),
    )
