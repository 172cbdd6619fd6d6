"""`aristobot backtest`: a strategy file over a candle CSV, in the sandbox, without the database."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click

from cli.backtest_grid import parse_grid_options, run_grid_command
from cli.dates import parse_date_ms
from core.backtest.engine import DEFAULT_FEE, TRADE_CSV_FIELDS, BacktestInputError, BacktestSettings
from core.candles.csv_io import CANDLE_COLUMNS, CandleFileError, read_candles_csv


def parse_params(items: tuple[str, ...]) -> dict[str, str]:
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint="--param")
        params[name.strip()] = value.strip()
    return params


def run_strategy_code(code: str, payload: dict) -> dict:
    """Run the backtest job on user code in the sandbox; a failure is {"status": "failed", "error"}."""
    from core.backtest.budget import backtest_limits
    from core.strategies.sandbox import SandboxError, run_sandboxed

    try:
        return run_sandboxed(code, job="core.backtest.engine:run_job", payload=payload, limits=backtest_limits())
    except SandboxError as exc:
        error = dict(exc.error)
        error.setdefault("text", str(exc))
        return {"status": "failed", "error": error}


def _format(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.4f}"
    return str(value)


def print_table(result: dict) -> None:
    metrics, notes = result["metrics"], result.get("notes", {})
    width = max(len(k) for k in metrics)
    for key, value in metrics.items():
        note = f"  ({notes[key]})" if key in notes else ""
        click.echo(f"{key.ljust(width)}  {_format(value)}{note}")
    click.echo(f"{'trades'.ljust(width)}  {result['trades']}")
    if result.get("gaps"):
        click.echo(f"gaps in the candles: {len(result['gaps'])} (run continued)")


def write_trades_csv(path: Path, trades: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=TRADE_CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(trades)


@click.command("backtest")
@click.option("--candles", "candles_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--strategy", "strategy_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--fee", default=DEFAULT_FEE, show_default=True, type=float, help="Fee per fill, fraction of notional.")
@click.option("--slippage-bps", default=0.0, show_default=True, type=float)
@click.option("--cash", default=10_000.0, show_default=True, type=float)
@click.option("--param", "param_items", multiple=True, metavar="NAME=VALUE", help="Override a strategy parameter.")
@click.option("--from", "date_from", default=None, help="First day (UTC), YYYY-MM-DD or ISO datetime.")
@click.option("--to", "date_to", default=None, help="Last day (UTC, inclusive).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--trades", "trades_path", default=None, type=click.Path(dir_okay=False, path_type=Path), help="Write trades CSV."
)
@click.option(
    "--grid",
    "grid_items",
    multiple=True,
    metavar="NAME=SPEC",
    help="Run a parameter grid: NAME = START..END[:STEP] or NAME = V1, V2, ... (repeat per parameter).",
)
@click.option("--rank-by", default="total_return_pct", show_default=True, help="The metric a grid is ranked by.")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Grid sandboxes at once [one per core].")
def backtest_command(
    candles_path,
    strategy_path,
    fee,
    slippage_bps,
    cash,
    param_items,
    date_from,
    date_to,
    as_json,
    trades_path,
    grid_items,
    rank_by,
    workers,
) -> None:
    """Backtest a strategy file over a candle CSV (every combination of a grid with --grid)."""
    grid = parse_grid_options(grid_items, rank_by) if grid_items else None
    if grid and trades_path is not None:
        raise click.BadParameter("a grid reports each combination's metrics, not its trades", param_hint="--trades")
    try:
        candles = read_candles_csv(candles_path)
    except CandleFileError as exc:
        raise click.ClickException(str(exc)) from exc
    payload = {
        "candles": {c: candles[c].tolist() for c in CANDLE_COLUMNS},
        "params": parse_params(param_items),
        "fee": fee,
        "slippage_bps": slippage_bps,
        "cash": cash,
        "start_ms": parse_date_ms(date_from) if date_from else None,
        "end_ms": parse_date_ms(date_to, end_of_day=True) if date_to else None,
        "include_trades": True,
    }
    try:
        BacktestSettings(**{k: payload[k] for k in ("fee", "slippage_bps", "cash", "start_ms", "end_ms")}).validated()
    except BacktestInputError as exc:
        raise click.ClickException(str(exc)) from exc
    if grid:
        run_grid_command(strategy_path.read_text(), payload, grid, rank_by, workers, as_json)
        return
    result = run_strategy_code(strategy_path.read_text(), payload)
    if result.get("status") != "ok":
        error = result.get("error") or {}
        if as_json:
            click.echo(json.dumps({"status": "failed", "error": error}))
        else:
            click.echo(f"backtest failed: {error.get('text') or error.get('message')}", err=True)
        sys.exit(1)
    trades = result["trades"]
    if trades_path is not None:
        write_trades_csv(trades_path, trades)
    summary = {
        "status": "ok",
        "metrics": result["metrics"],
        "notes": result["notes"],
        "trades": len(trades),
        "final_equity": result["final_equity"],
        "num_candles": result["num_candles"],
        "gaps": result["gaps"],
        "evaluation": result["evaluation"],
    }
    if as_json:
        click.echo(json.dumps(summary))
    else:
        print_table(summary)
