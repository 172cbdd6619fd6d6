"""Arbitrage page: what the arb process publishes in Redis, and its intents in Postgres."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import secrets
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from arb.config import parse_arb_config
from arb.engine import ArbEngine
from arb.runner import status_publisher
from bench.arb import apply_frame, generate_stream
from core import arb_commands, arb_history
from core.infra.bus import ARB_COMMANDS, ARB_PAIRS, arb_status_key, get_redis
from core.infra.db import new_session, session_scope
from core.models.arb import ArbFunding, ArbIntent, ArbLeg, ArbOperatorAction
from tests.support import csrf_token_from


def publish_status(snapshot: dict) -> None:
    """What the process publishes for an engine of this one pair."""
    status_publisher([snapshot["pair"]], get_redis)(snapshot)


def engine_with_books(pair: str = "web-test") -> ArbEngine:
    """A real engine fed a real frame stream (no venues): its snapshot is what the process publishes."""
    engine = ArbEngine(parse_arb_config({"pair": pair}), {}, None)
    for venue, raw in generate_stream(40):
        apply_frame(engine, venue, raw)
    engine.evaluate()
    engine.emit("spread_detected", direction="long_vest_short_paradex", spread_bps="12.5")
    engine.emit("unhedged_position", level=40, venue="vest", net="0.01")
    return engine


def test_the_page_needs_a_login(client):
    response = client.get("/arbitrage/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.fixture()
def logged_in_admin(make_user, login):
    admin, password = make_user(is_admin=True)
    assert login(admin.username, password).status_code == 302
    return admin


def test_traders_neither_see_nor_reach_the_engine(client, logged_in):
    assert "Arbitrage" not in client.get("/").get_data(as_text=True)
    assert client.get("/arbitrage/").status_code == 404
    assert client.get("/arbitrage/status").status_code == 404


def test_without_a_running_process_the_page_says_so(client, logged_in_admin, redis_client):
    html = client.get("/arbitrage/").get_data(as_text=True)
    assert "The arb process is not running" in html and 'hx-get="/arbitrage/status"' in html


def test_published_status_shows_spreads_books_position_and_events(client, logged_in_admin, redis_client):
    engine = engine_with_books()
    publish_status(engine.snapshot())
    html = client.get("/arbitrage/status").get_data(as_text=True)
    snapshot = json.loads(redis_client.get(arb_status_key("web-test")))
    for direction, edge in snapshot["spreads"]["entry_bps"].items():
        assert direction.replace("_", " ") in html and edge in html
    assert snapshot["books"]["vest"]["bid"] in html and snapshot["books"]["paradex"]["ask"] in html
    assert "spread_detected" in html and "unhedged_position" in html and 'class="error"' in html
    assert 'id="arb-state"' in html and "web-test" in html and "not running" not in html


def test_the_risk_card_shows_each_legs_distance_to_liquidation_and_each_accounts_margin_ratio(
    client, logged_in_admin, redis_client
):
    from decimal import Decimal as D

    from arb import risk
    from core.exchanges.perp.venue import PerpAccount

    engine = engine_with_books()
    assert "No risk read yet" in _status_html(client, engine)
    legs = [risk.LegRisk("vest", D("0.01"), D(60000), D(57000)), risk.LegRisk("paradex", D("-0.01"), D(60000), None)]
    accounts = [PerpAccount("vest", D(100), D(50), D(60)), PerpAccount("paradex", D(100), D(90), D(3))]
    engine.risk_view = risk.view(legs, accounts, risk.alarms(legs, accounts, engine.cfg.risk), time.time())
    html = _status_html(client, engine)
    assert 'id="arb-risk"' in html and "57000.00" in html and "5.00 %" in html and "0.6000" in html
    assert html.count('class="pill bad" data-risk="distance"') == 1  # 5 % is past the 7.5 % reduce line
    assert html.count('class="pill warn" data-risk="margin"') == 1 and "No risk read yet" not in html


def test_the_pnl_card_shows_the_held_positions_carry_and_the_log_a_carry_exit(client, logged_in_admin, redis_client):
    engine = engine_with_books()
    engine.sizes = {"vest": D("0.01"), "paradex": D("-0.01")}
    engine.period_opened_at, engine.period_funding = time.time() - 7200, D("-2")  # held 2 h, paid 2
    asyncio.run(engine.check_carry())  # the rule is off by default: judged, never acted on
    engine.emit("carry_exit", direction="long_vest_short_paradex", per_hour="-1", projected="-8", exit_fees="0.5")
    html = _status_html(client, engine)
    carry = re.search(r'id="arb-carry">(.*?)</td>', html).group(1)
    assert carry.startswith("-2.0000 funding · -1.0000/h · -8.0000 over 8 h vs ") and "exit rule off" in html
    assert "Carry exit: long vest short paradex paid -1 of funding an hour" in html


def _status_html(client, engine: ArbEngine) -> str:
    publish_status(engine.snapshot())
    return client.get("/arbitrage/status").get_data(as_text=True)


def test_an_old_status_is_flagged_as_stuck(client, logged_in_admin, redis_client):
    snapshot = engine_with_books().snapshot() | {"ts": time.time() - 60}
    publish_status(snapshot)
    assert "the arb process may be stuck" in client.get("/arbitrage/status").get_data(as_text=True)


def test_garbage_in_redis_is_reported_not_a_crash(client, logged_in_admin, redis_client):
    redis_client.set(ARB_PAIRS, json.dumps(["BTC", "ETH"]))
    redis_client.set(arb_status_key("BTC"), "{not json")
    redis_client.set(arb_status_key("ETH"), json.dumps(engine_with_books("ETH").snapshot(), default=str))
    response = client.get("/arbitrage/status")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "The status of BTC is not valid JSON" in html
    assert 'data-pair="ETH"' in html and 'data-pair="BTC"' not in html
    redis_client.set(ARB_PAIRS, "[1, 2]")
    assert "The published list of pairs is not valid" in client.get("/arbitrage/status").get_data(as_text=True)


CONTROL_ACTIONS = ("pause", "resume", "dry_run_on", "dry_run_off", "reset_kill_switch", "flatten")


def _token(client) -> str:
    return csrf_token_from(client.get("/").get_data(as_text=True))


def _actions(pair: str) -> list[ArbOperatorAction]:
    with new_session() as session:
        return list(session.scalars(select(ArbOperatorAction).where(ArbOperatorAction.pair == pair)))


def test_a_trader_gets_404_on_every_control_and_on_the_history_and_its_csv(client, logged_in, redis_client):
    publish_status(engine_with_books("trader-404").snapshot())
    token = _token(client)
    for action in CONTROL_ACTIONS:
        assert client.post("/arbitrage/control", data={"csrf_token": token, "action": action}).status_code == 404
    assert client.get("/arbitrage/history/").status_code == 404
    assert client.get("/arbitrage/history/export.csv").status_code == 404
    assert redis_client.llen(ARB_COMMANDS) == 0 and _actions("trader-404") == []


def test_an_admins_control_is_recorded_under_their_name_and_queued_once(client, logged_in_admin, redis_client):
    publish_status(engine_with_books("ctl-web").snapshot())
    html = client.get("/arbitrage/").get_data(as_text=True)
    assert all(f'data-action="{action}"' in html for action in CONTROL_ACTIONS) and "hx-confirm=" in html
    answer = client.post("/arbitrage/control", data={"csrf_token": _token(client), "action": "flatten"})
    assert answer.status_code == 302
    (raw,) = redis_client.lrange(ARB_COMMANDS, 0, -1)
    command = arb_commands.Command.from_json(raw)
    (row,) = _actions("ctl-web")
    assert (command.action, command.pair, command.by_username, command.by_user_id, command.action_id) == (
        "flatten",
        "ctl-web",
        logged_in_admin.username,
        logged_in_admin.id,
        row.id,
    )
    assert (row.action, row.username, row.user_id, row.result) == (
        "flatten",
        logged_in_admin.username,
        logged_in_admin.id,
        "queued",
    )
    listed = client.get("/arbitrage/status").get_data(as_text=True)
    assert f'data-action-id="{row.id}"' in listed and logged_in_admin.username in listed


def test_an_htmx_control_answers_with_the_message_to_show(client, logged_in_admin, redis_client):
    publish_status(engine_with_books("ctl-htmx").snapshot())
    answer = client.post(
        "/arbitrage/control", data={"csrf_token": _token(client), "action": "pause"}, headers={"HX-Request": "true"}
    )
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and 'data-queued="yes"' in html and "queued (action #" in html
    assert redis_client.llen(ARB_COMMANDS) == 1


@pytest.mark.parametrize("action", ["", "explode", "PAUSE", "pause;flatten", "x" * 500])
def test_a_bad_action_is_400_and_nothing_is_queued_or_recorded(client, logged_in_admin, redis_client, action):
    publish_status(engine_with_books("ctl-bad").snapshot())
    answer = client.post("/arbitrage/control", data={"csrf_token": _token(client), "action": action})
    assert answer.status_code == 400 and "nothing was queued" in answer.get_data(as_text=True)
    assert redis_client.llen(ARB_COMMANDS) == 0 and _actions("ctl-bad") == []


def test_a_control_without_a_running_engine_or_without_csrf_changes_nothing(client, logged_in_admin, redis_client):
    answer = client.post("/arbitrage/control", data={"csrf_token": _token(client), "action": "pause"})
    assert answer.status_code == 409 and "not running" in answer.get_data(as_text=True)
    publish_status(engine_with_books("ctl-csrf").snapshot())
    assert client.post("/arbitrage/control", data={"action": "pause"}).status_code == 400
    assert redis_client.llen(ARB_COMMANDS) == 0 and _actions("ctl-csrf") == []


def _store_intents(pair: str, count: int, kind: str = "entry", state: str = "done", day: datetime | None = None):
    """Intents as the engine writes them: a SELL on paradex at 101, a BUY on vest at 100, 0.01 each, fees 0.001."""
    with session_scope() as session:
        for _ in range(count):
            intent = ArbIntent(
                pair=pair,
                kind=kind,
                direction="long_vest_short_paradex",
                size=D("0.01"),
                spread_bps=D("12.5"),
                state=state,
                before={},
                outcome={"sizes_after": {"vest": "0.01", "paradex": "-0.01"}},
            )
            if day is not None:
                intent.created_at = day
            intent.legs = [
                ArbLeg(
                    venue="vest",
                    market="BTC-PERP",
                    side="BUY",
                    size=D("0.01"),
                    client_id=secrets.token_hex(8),
                    state="filled",
                    filled_size=D("0.01"),
                    avg_price=D(100),
                    fee=D("0.001"),
                ),
                ArbLeg(
                    venue="paradex",
                    market="BTC-USD-PERP",
                    side="SELL",
                    size=D("0.01"),
                    client_id=secrets.token_hex(8),
                    state="filled",
                    filled_size=D("0.01"),
                    avg_price=D(101),
                    fee=D("0.002"),
                ),
            ]
            session.add(intent)


def test_the_history_pages_50_at_a_time_and_filters_by_pair_kind_state_and_dates(client, logged_in_admin):
    pair = f"h-{secrets.token_hex(3)}"
    _store_intents(pair, 52)
    _store_intents(pair, 3, kind="exit", state="failed", day=datetime(2026, 1, 2, 12, tzinfo=UTC))
    first = client.get(f"/arbitrage/history/?pair={pair}").get_data(as_text=True)
    assert first.count("data-intent=") == 50 and "55 intents" in first and "page 1 of 2" in first
    second = client.get(f"/arbitrage/history/?pair={pair}&page=2").get_data(as_text=True)
    assert second.count("data-intent=") == 5 and 'rel="prev"' in second and 'rel="next"' not in second
    exits = client.get(f"/arbitrage/history/?pair={pair}&kind=exit").get_data(as_text=True)
    assert exits.count("data-intent=") == 3 and "3 intents" in exits
    assert client.get(f"/arbitrage/history/?pair={pair}&state=failed").get_data(as_text=True).count("data-intent=") == 3
    dated = client.get(f"/arbitrage/history/?pair={pair}&from=2026-01-02&to=2026-01-02").get_data(as_text=True)
    assert dated.count("data-intent=") == 3
    assert "No intent matches" in client.get(f"/arbitrage/history/?pair={pair}&from=2026-01-03&to=2026-01-04").get_data(
        as_text=True
    )
    row = first.split("data-intent=")[1]
    assert "BUY</span> 0.01 @ 100" in row and "SELL</span> 0.01 @ 101" in row
    assert "99.50 bps" in row and "0.0070" in row and "0.0030" in row  # captured, net = 1.01 - 1.00 - 0.003, fees


def test_the_csv_exports_the_filtered_set_with_its_columns(client, logged_in_admin):
    pair = f"c-{secrets.token_hex(3)}"
    _store_intents(pair, 2)
    _store_intents(pair, 1, kind="exit")
    answer = client.get(f"/arbitrage/history/export.csv?pair={pair}&kind=entry")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert list(rows[0]) == arb_history.CSV_COLUMNS and len(rows) == 2
    first = rows[0]
    assert (first["pair"], first["kind"], first["state"], first["direction"]) == (
        pair,
        "entry",
        "done",
        "long_vest_short_paradex",
    )
    assert (first["vest_side"], first["vest_filled"], first["vest_avg_price"], first["vest_fee"]) == (
        "BUY",
        "0.01",
        "100",
        "0.001",
    )
    assert (first["paradex_side"], first["paradex_avg_price"], first["fees"], first["net_pnl"]) == (
        "SELL",
        "101",
        "0.003",
        "0.007",
    )
    assert first["detected_spread_bps"] == "12.5" and first["captured_spread_bps"] == "99.5025"


def test_each_intents_funding_shows_in_the_history_and_its_csv_and_counts_in_its_net(client, logged_in_admin):
    pair = f"fu-{secrets.token_hex(3)}"
    _store_intents(pair, 1)
    with session_scope() as session:
        intent_id = session.scalars(select(ArbIntent.id).where(ArbIntent.pair == pair)).one()
        session.add(ArbFunding(pair=pair, intent_id=intent_id, venue="vest", amount=D("-0.0015")))
        session.add(ArbFunding(pair=pair, intent_id=intent_id, venue="paradex", amount=D("0.0005")))
    html = client.get(f"/arbitrage/history/?pair={pair}").get_data(as_text=True)
    row = re.search(rf'<tr data-intent="{intent_id}">.*?</tr>', html, re.S).group(0)
    assert '<th class="num">Funding</th>' in html and 'data-funding="-0.0010' in row
    assert re.findall(r">(-?[0-9.]+)</td>", row)[-2:] == ["-0.0010", "0.0060"]  # funding, then 0.007 - 0.001
    exported = client.get(f"/arbitrage/history/export.csv?pair={pair}").get_data(as_text=True)
    (line,) = list(csv.DictReader(io.StringIO(exported)))
    assert (line["fees"], line["funding"], line["net_pnl"]) == ("0.003", "-0.001", "0.006")


@pytest.mark.parametrize(
    "query",
    [
        "kind=explode",
        "state=done%27--",
        "from=2026-13-01",
        "to=yesterday",
        "from=2026-02-02&to=2026-02-01",
        "pair=%3Cscript%3E",
        "pair=" + "x" * 65,
        "page=0",
        "page=-1",
        "page=abc",
        "page=99999999999",
    ],
)
def test_a_bad_filter_value_is_a_clear_400(client, logged_in_admin, query):
    answer = client.get(f"/arbitrage/history/?{query}")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400 and 'id="arb-history-error"' in html
    assert "expected" in html or "must not be after" in html
    if not query.startswith("page"):
        assert client.get(f"/arbitrage/history/export.csv?{query}").status_code == 400


def test_the_page_shows_the_pnl_realised_since_inception_beside_the_days(client, logged_in_admin, redis_client):
    pair = f"p-{secrets.token_hex(3)}"
    _store_intents(pair, 1)  # entry: +0.007, still open
    publish_status(engine_with_books(pair).snapshot())
    assert '<td class="num" id="arb-pnl-total">0.0000</td>' in client.get("/arbitrage/status").get_data(as_text=True)
    with session_scope() as session:  # the exit that leaves the pair flat: bought back at 100.5, sold at 100.2
        exit_ = ArbIntent(
            pair=pair,
            kind="exit",
            direction="long_vest_short_paradex",
            size=D("0.01"),
            state="done",
            before={},
            outcome={"sizes_after": {"vest": "0", "paradex": "0"}},
        )
        exit_.legs = [
            ArbLeg(
                venue="vest",
                market="BTC-PERP",
                side="SELL",
                size=D("0.01"),
                client_id=secrets.token_hex(8),
                state="filled",
                filled_size=D("0.01"),
                avg_price=D("100.2"),
                fee=D("0.001"),
            ),
            ArbLeg(
                venue="paradex",
                market="BTC-USD-PERP",
                side="BUY",
                size=D("0.01"),
                client_id=secrets.token_hex(8),
                state="filled",
                filled_size=D("0.01"),
                avg_price=D("100.5"),
                fee=D("0.002"),
            ),
        ]
        session.add(exit_)
    html = client.get("/arbitrage/status").get_data(as_text=True)
    assert '<td class="num" id="arb-pnl-total">0.0010</td>' in html and "Realized today" in html  # 0.007 - 0.006


def _publish_pairs(*pairs: str) -> None:
    publish = status_publisher(list(pairs), get_redis)
    for pair in pairs:
        publish(engine_with_books(pair).snapshot())


def test_every_pair_has_its_row_with_state_position_and_its_own_controls(client, logged_in_admin, redis_client):
    _publish_pairs("BTC", "ETH")
    html = client.get("/arbitrage/").get_data(as_text=True)
    rows = re.findall(r'<tr data-pair="([^"]+)"', html)
    assert rows == ["BTC", "ETH"] * 2 and 'id="arb-pairs"' in html and 'id="arb-pair-controls"' in html
    for pair in ("BTC", "ETH"):
        assert f'<div class="controls" data-pair="{pair}">' in html
        assert html.count(f'name="pair" value="{pair}"') >= len(CONTROL_ACTIONS)
    assert re.search(r'<tr data-pair="BTC" class="selected"', html) and "Flatten the pair BTC?" in html
    detail = client.get("/arbitrage/status?pair=ETH").get_data(as_text=True)
    assert (
        re.search(r'<tr data-pair="ETH" class="selected"', detail) and '<span class="muted">pair ETH</span>' in detail
    )
    unknown = client.get("/arbitrage/status?pair=DOGE%3Cscript%3E").get_data(as_text=True)
    assert "The engine has no pair &#39;DOGE&lt;script&gt;&#39;: showing BTC" in unknown and "<script>" not in unknown


def test_a_control_names_its_pair_and_a_missing_or_unknown_pair_queues_nothing(client, logged_in_admin, redis_client):
    btc, eth = f"btc-{secrets.token_hex(3)}", f"eth-{secrets.token_hex(3)}"
    _publish_pairs(btc, eth)
    token = _token(client)
    answer = client.post("/arbitrage/control", data={"csrf_token": token, "action": "pause", "pair": eth})
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/arbitrage/?pair={eth}")
    (raw,) = redis_client.lrange(ARB_COMMANDS, 0, -1)
    assert arb_commands.Command.from_json(raw).pair == eth and [a.action for a in _actions(eth)] == ["pause"]
    for data, expected in (
        ({"action": "flatten"}, f"Which pair? (the engine trades {btc}, {eth})"),
        ({"action": "flatten", "pair": "SOL"}, f"Unknown pair &#39;SOL&#39; (the engine trades {btc}, {eth})"),
        ({"action": "flatten", "pair": "x" * 500}, "Unknown pair"),
    ):
        refused = client.post("/arbitrage/control", data={"csrf_token": token, **data})
        assert refused.status_code == 400 and expected in refused.get_data(as_text=True)
    assert redis_client.llen(ARB_COMMANDS) == 1 and _actions(btc) == [] and _actions("SOL") == []


@pytest.mark.browser
def test_trader_watches_a_spread_get_captured_live_in_chromium(page, browser_login, redis_client, infra, sims):
    from arb.store import ArbStore
    from arb.venues import build_venues
    from tests.arb.conftest import arb_config, inject, new_credentials

    creds, cfg = new_credentials(sims), arb_config(sims, max_position="0.01")
    started, stop = threading.Event(), threading.Event()

    async def run_engine():
        engine = ArbEngine(
            cfg, await build_venues(cfg, creds), ArbStore(), publish_status, lambda: arb_commands.take(get_redis())
        )
        await engine.start()
        started.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await engine.stop()

    thread = threading.Thread(target=lambda: asyncio.run(run_engine()), daemon=True)
    thread.start()
    try:
        assert started.wait(20)
        browser_login(is_admin=True)
        page.click("text=Arbitrage")
        page.wait_for_url("**/arbitrage/")
        expect(page.locator("#arb-state")).to_have_text("running", timeout=10_000)
        assert page.locator("#arb-books tbody tr").count() == 2
        assert "long vest short paradex" in page.locator("#arb-spreads").inner_text()
        expect(page.locator("#arb-risk tr[data-venue='paradex'] [data-risk='margin']")).to_have_text(
            re.compile(r"^\d+\.\d{4}$"), timeout=10_000
        )  # the risk watch's read of the venue account, live
        inject(sims, "paradex", 30, 0.6)
        entry = page.locator("#arb-events tr[data-event='entry_executed']").first
        expect(entry).to_contain_text("Entered long vest short paradex at a spread of", timeout=10_000)
        when = entry.locator("time")  # in the reader's time zone; the UTC it was served in is the tooltip
        expect(when).not_to_have_attribute("data-local", "time")
        assert re.fullmatch(r"\d\d:\d\d:\d\d( [AP]M)?", when.inner_text()) and when.get_attribute("title").endswith(
            " UTC"
        )
        page.wait_for_selector("#arb-intents td:text-is('entry')", timeout=10_000)
        assert page.locator("#arb-intents .pill").first.inner_text() in ("done", "sent", "pending")

        # The admin flattens the pair: a confirmation, then the engine's answer on the page within seconds.
        page.once(
            "dialog",
            lambda dialog: dialog.accept() if f"Flatten the pair {cfg.pair}?" in dialog.message else dialog.dismiss(),
        )
        page.click("button[data-action='flatten']")
        expect(page.locator("#arb-control-result")).to_contain_text("queued (action #", timeout=10_000)
        expect(page.locator("#arb-state")).to_have_text("paused", timeout=10_000)
        action = page.locator("#arb-actions tbody tr").first
        expect(action.locator(".pill")).to_have_text(re.compile(r"^done: "), timeout=10_000)
        assert "flatten" in action.inner_text() and page.locator("#arb-reason").inner_text().startswith("paused by ")
        page.click("text=Trade history")
        page.wait_for_url("**/arbitrage/history/")
        assert page.locator("#arb-history tr[data-intent]").count() >= 1
    finally:
        stop.set()
        thread.join(20)
