"""`python -m feeds` wires its parts at start-up: the bots' tick hook is handed to the pipeline explicitly."""

from __future__ import annotations

from core import tasks
from core.bots.ticks import due_ticks
from feeds.__main__ import build_service


def test_the_feeds_process_hands_the_bots_tick_hook_to_its_pipeline(infra):
    service = build_service("sim", ["BTCUSDT"], ["1m"], "ws://127.0.0.1:9", "http://127.0.0.1:9")
    hook = service.pipeline.tick_hook
    assert hook is not None and hook.due is due_ticks
    assert hook.send_task.__self__.conf.task_routes[tasks.BOT_TICK.rsplit(".", 1)[0] + ".*"] == {"queue": "bots"}
