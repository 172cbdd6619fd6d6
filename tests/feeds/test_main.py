"""`python -m feeds` wires its parts at start-up: the bots' tick hook is handed to the pipeline explicitly."""

from __future__ import annotations

from core import tasks
from core.bots.ticks import due_ticks
from core.candles.health import feed_status
from core.infra.liveness import write_liveness
from feeds.__main__ import build_service, combined_info, parse_args, sources_of


def test_the_feeds_process_hands_the_bots_tick_hook_to_its_pipeline(infra):
    service = build_service("sim", ["BTCUSDT"], ["1m"], "ws://127.0.0.1:9", "http://127.0.0.1:9")
    hook = service.pipeline.tick_hook
    assert hook is not None and hook.due is due_ticks
    assert hook.send_task.__self__.conf.task_routes[tasks.BOT_TICK.rsplit(".", 1)[0] + ".*"] == {"queue": "bots"}


def test_every_configured_source_gets_its_feed_and_the_liveness_report_covers_them_all(infra, redis_client):
    [configured] = sources_of(parse_args([]))  # config.yaml's single-source form: the simulator
    assert (configured.venue, configured.symbols) == ("sim", ("BTCUSDT", "ETHUSDT", "SOLUSDT"))
    [only] = sources_of(parse_args(["--venue", "kraken", "--symbols", "xbtusd", "--ws-url", "ws://127.0.0.1:9/ws"]))
    assert (only.venue, only.symbols, only.ws_url) == ("kraken", ("XBTUSD",), "ws://127.0.0.1:9/ws")
    services = [
        build_service("sim", ["BTCUSDT"], ["1m"], "ws://127.0.0.1:9", "http://127.0.0.1:9"),
        build_service("kraken", ["XBTUSD"], ["1m"], "ws://127.0.0.1:9/ws", "http://127.0.0.1:9"),
    ]
    assert services[1].pipeline.parse == services[1].protocol.parse and services[1].protocol.venue == "kraken"
    assert services[1].info()["symbols"]["XBTUSD"]["since_ts"] is not None  # followed from the start, reached or not
    services[1].state.since["XBTUSD"] = 1.0  # followed long ago (the venue unreachable since), never a message: stale
    info = combined_info(services)
    assert info["venue"] == "sim" and [s["venue"] for s in info["sources"]] == ["sim", "kraken"]
    write_liveness("feeds", info, redis_client)
    assert {"venue": "kraken", "symbol": "XBTUSD"} in [
        {k: s[k] for k in ("venue", "symbol")} for s in feed_status(redis_client)["stale"]
    ]
