"""`aristobot backtest --grid`: every combination of a parameter grid over one candle CSV, in warm
sandboxes on every core, ranked by a metric (the engine of the web's grid runs: core/backtest/grid.py)."""

from __future__ import annotations

import json
import sys

import click

from core.backtest.grid import run_grid
from core.backtest.run_params import GRID_METRICS, RunInputError, grid_combinations, parse_grid
from core.backtest.run_results import ranked_grid_entries

SHOWN_ROWS = 10


def parse_grid_options(items: tuple[str, ...], rank_by: str) -> dict[str, list]:
    """The --grid lines as one grid (NAME = START..END[:STEP] or NAME = V1, V2, ...), refused with the reason."""
    if rank_by not in GRID_METRICS:
        raise click.BadParameter(f"rank by one of {', '.join(GRID_METRICS)}", param_hint="--rank-by")
    try:
        return parse_grid("\n".join(items))
    except RunInputError as exc:
        raise click.BadParameter(str(exc), param_hint="--grid") from exc


def _entry(result: dict) -> dict:
    return {
        "params": result.get("params") or {},
        "status": result.get("status"),
        "metrics": result.get("metrics"),
        "final_equity": result.get("final_equity"),
        "trades": result.get("trades") if isinstance(result.get("trades"), int) else None,
        "error": result.get("error") if result.get("status") != "ok" else None,
    }


def run_grid_command(code: str, payload: dict, grid: dict[str, list], rank_by: str, workers: int | None, as_json: bool):
    from core.strategies.sandbox import SandboxError

    combos = [{**payload["params"], **combo} for combo in grid_combinations(grid)]
    try:
        outcome = run_grid(code, {**payload, "include_trades": False}, combos, workers=workers)
    except SandboxError as exc:
        error = dict(exc.error) | {"text": str(exc)}
        if as_json:
            click.echo(json.dumps({"status": "failed", "error": error}))
        else:
            click.echo(f"grid failed: {exc}", err=True)
        sys.exit(1)
    entries = [_entry(r) for r in outcome.results]
    ranked = ranked_grid_entries(entries, rank_by)
    failed = [e for e in entries if e["status"] != "ok"]
    status = "ok" if any(e["status"] == "ok" for e in entries) else "failed"
    if as_json:
        report = {"status": status, "rank_by": rank_by, "combinations": len(entries), "failed": len(failed)}
        click.echo(json.dumps(report | {"best": ranked[0] if ranked else None, "results": entries}))
    else:
        click.echo(f"{len(entries)} combinations, {len(failed)} failed; best by {rank_by} first:")
        for entry in ranked[:SHOWN_ROWS]:
            params = ", ".join(f"{k}={v}" for k, v in entry["params"].items() if k in grid)
            click.echo(f"  {params}: {rank_by} {entry['metrics'][rank_by]:,.4f}, {entry['trades']} trades")
        for entry in failed[:SHOWN_ROWS]:
            error = entry["error"] or {}
            click.echo(f"  failed {entry['params']}: {error.get('text') or error.get('message')}")
    if status != "ok":
        sys.exit(1)
