"""Strategy templates a trader starts from; their code lives in core/strategies/examples/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    description: str
    code: str


_CATALOGUE = (
    ("sma_cross", "SMA cross", "Long when the fast moving average crosses above the slow one; exit on the cross back."),
    (
        "rsi_mean_reversion",
        "RSI mean reversion",
        "Buy an oversold RSI, sell when it recovers; fixed-distance stop loss.",
    ),
    (
        "bollinger_breakout",
        "Bollinger breakout",
        "Buy a close above the upper Bollinger band; exit at the middle band, take profit above.",
    ),
    (
        "macd_trend",
        "MACD trend",
        "Trade MACD/signal crosses in the direction of the 200-candle EMA, long and short.",
    ),
    (
        "ema_trailing",
        "EMA trend, trailing stop",
        "Buy a close crossing above its EMA; the exit is a trailing stop that follows the best price since the entry.",
    ),
)


def list_templates() -> list[Template]:
    return [
        Template(name, title, description, (EXAMPLES_DIR / f"{name}.py").read_text(encoding="utf-8"))
        for name, title, description in _CATALOGUE
    ]


def get_template(name: str) -> Template:
    for template in list_templates():
        if template.name == name:
            return template
    known = ", ".join(n for n, _, _ in _CATALOGUE)
    raise KeyError(f"unknown strategy template {name!r} (known: {known})")
