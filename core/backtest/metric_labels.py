"""Backtest metrics in words: the name a trader reads for each JSON key, and its definition from
docs/METRICS.md (the one place the formulas are written), shown on hover."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

METRICS_DOC = Path(__file__).resolve().parents[2] / "docs" / "METRICS.md"

LABELS = {
    "total_return_pct": "Total return %",
    "buy_and_hold_return_pct": "Buy and hold return %",
    "cagr_pct": "Annual growth rate (CAGR) %",
    "sharpe": "Sharpe ratio",
    "sortino": "Sortino ratio",
    "calmar": "Calmar ratio",
    "max_drawdown_pct": "Max drawdown %",
    "max_drawdown_intraday_pct": "Max intraday drawdown %",
    "max_drawdown_duration_days": "Longest drawdown (days)",
    "num_trades": "Trades",
    "winning_trades": "Winning trades",
    "losing_trades": "Losing trades",
    "breakeven_trades": "Breakeven trades",
    "win_rate_pct": "Win rate %",
    "profit_factor": "Profit factor",
    "expectancy": "Average P&L per trade",
    "expectancy_pct": "Average return per trade %",
    "avg_win": "Average win",
    "avg_loss": "Average loss",
    "best_trade_pct": "Best trade %",
    "worst_trade_pct": "Worst trade %",
    "exposure_pct": "Time in the market %",
    "fees_paid": "Fees paid",
    "start_cash": "Starting cash",
    "final_equity": "Final equity",
    "days": "Days",
    "annualization_days": "Days per year (annualisation)",
}

_ROW = re.compile(r"^\|(?P<keys>[^|]*`[^|]*)\|(?P<formula>(?:[^|\\]|\\.)*)\|(?P<undefined>(?:[^|\\]|\\.)*)\|\s*$")


def label(key: str) -> str:
    """The metric's name in words; an unknown key (a newer engine) reads as its words."""
    return LABELS.get(key) or key.replace("_pct", " %").replace("_", " ").capitalize()


def definition(key: str) -> str:
    return definitions().get(key, "")


@lru_cache(maxsize=1)
def definitions() -> dict[str, str]:
    """key -> "formula. Undefined when ..." from the metrics table of docs/METRICS.md."""
    found: dict[str, str] = {}
    for line in METRICS_DOC.read_text(encoding="utf-8").splitlines():
        row = _ROW.match(line)
        if row is None:
            continue
        formula, undefined = (_plain(row[part]) for part in ("formula", "undefined"))
        text = formula if undefined in ("", "—") else f"{formula}. Undefined when: {undefined}"
        for key in re.findall(r"`([a-z_]+)`", row["keys"]):
            found[key] = text
    return found


def _plain(markdown: str) -> str:
    """Table cell text without the markdown: code ticks, bold, escaped pipes."""
    return markdown.replace("\\|", "|").replace("`", "").replace("**", "").strip()
