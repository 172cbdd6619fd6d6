"""A bot whose strategy answers nonsense or blows up on a tick (issue 21): stopped, nothing ordered, and the
error the bot page shows names the method, the candle and the line."""

from __future__ import annotations

import pytest

from core.bots.runner import run_tick
from core.infra.db import new_session
from core.models import Bot
from core.strategies.contract import format_candle_time
from core.strategies.sandbox import SandboxLimits, WarmSandbox
from tests.core.bots.fixtures import bot_trader, hour_candles, make_bot  # noqa: F401 - fixtures

HEADER = "import math\nfrom core.strategies import Strategy\n\n\nclass Bad(Strategy):\n"
ENTER = "    def should_long(self):\n        return True\n\n"
CASES = {
    "string from should_long": ("    def should_long(self):\n        return 'yes'\n", "should_long", "True or False"),
    "NaN stop_loss": (ENTER + "    def stop_loss(self):\n        return math.nan\n", "stop_loss", "positive price"),
    "trail too wide": (
        ENTER + "    def trailing_stop(self):\n        return 25\n",
        "trailing_stop",
        "between 0.1 and 20",
    ),
    "negative size": (ENTER + "    def position_size(self):\n        return -0.5\n", "position_size", "(0, 1]"),
    "endless recursion": ("    def should_long(self):\n        return self.should_long()\n", "should_long", "recursed"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_answer_stops_the_bot_naming_method_candle_and_line(
    bot_trader,  # noqa: F811 - the fixture imported above
    make_bot,  # noqa: F811
    hour_candles,  # noqa: F811
    case,
):
    body, method, words = CASES[case]
    bot_id = make_bot(bot_trader, HEADER + body)

    def decide(spec, candles, position):
        with WarmSandbox(spec.code, limits=SandboxLimits(cpu_seconds=5, wall_seconds=15)) as sandbox:
            return sandbox.decide(candles, params=spec.params, position=position)

    result = run_tick(bot_id, hour_candles[-1], "1h", decide)
    assert result.action == "error" and result.order_ids == ()
    with new_session() as session:
        bot = session.get(Bot, bot_id)
        assert bot is not None
        error, state = bot.last_error, bot.state
    assert state == "error"
    assert error["message"].startswith(f"{method}() at candle {format_candle_time(hour_candles[-1])}")
    assert words in error["message"] and isinstance(error["line"], int) and error["line"] >= 6
