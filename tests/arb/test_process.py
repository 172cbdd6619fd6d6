"""A real `python -m arb` process: SIGKILL between the two legs, restart, recovery from the intent
record and the venues; SIGINT ends with the line "Clean exit, no pending orders"."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import select

from core.exchanges.perp.credentials import Credentials
from core.infra.db import new_session
from core.models.arb import ArbIntent, ArbPosition
from tests.arb.conftest import inject, new_credentials, sim_positions
from tests.conftest import LOG_DIR, ROOT, process_env

pytestmark = pytest.mark.slow  # kills and restarts the real arb process between its legs

ZERO = D(0)


class ArbProcess:
    def __init__(self, sims, creds: Credentials, config: dict, tmp_path: Path):
        path = tmp_path / "config.yaml"
        path.write_text(json.dumps({"arb": config}))  # JSON is YAML
        env = process_env(
            ARISTOBOT_CONFIG=str(path),
            VEST_API_KEY=creds.vest_api_key,
            VEST_SIGNING_KEY=creds.vest_signing_key,
            PARADEX_PRIVATE_KEY=creds.paradex_private_key,
            PARADEX_ACCOUNT=creds.paradex_account,
        )
        self.lines: list[dict] = []
        self.raw: list[str] = []
        self._log = open(LOG_DIR / f"arb-{config['pair']}.log", "a")  # noqa: SIM115  (the secrets audit reads it)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "arb"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self._log.write(line)
            self._log.flush()
            self.raw.append(line.rstrip("\n"))
            with contextlib.suppress(ValueError):
                self.lines.append(json.loads(line))

    def events(self, name: str) -> list[dict]:
        return [line for line in self.lines if line.get("event") == name]

    def wait_event(self, name: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(name)
            if found:
                return found[0]
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"no {name!r} from the arb process; last lines: {self.raw[-8:]}")

    def finish(self, sig: int, timeout: float = 30) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        self._log.close()
        return code


def process_config(sims, pair: str, **extra) -> dict:
    return {
        "pair": pair,
        "leg_timeout_s": 5,
        "retry_backoff_ms": 20,
        "max_position": "0.01",
        "vest": {"rest_url": sims.vest_rest, "ws_url": sims.vest_ws},
        "paradex": {"rest_url": sims.paradex_rest, "ws_url": sims.paradex_ws},
        **extra,
    }


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def pair_intents(pair: str) -> list[ArbIntent]:
    with new_session() as session:
        return list(session.scalars(select(ArbIntent).where(ArbIntent.pair == pair).order_by(ArbIntent.id)).all())


@pytest.fixture(autouse=True)
def clear_faults(sims):
    yield
    for face in (sims.vest, sims.paradex):
        face.faults.reject_next_order = face.faults.lose_next_response = False
        face.faults.delay_next_response_s = 0.0


def test_killed_after_both_legs_reached_the_venues_restart_recovers_the_hedged_position(sims, infra, tmp_path):
    creds, pair = new_credentials(sims), f"kill-a-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    # Hold the position across the restart: with 40 bps of fees a leg, closing would need the books to cross
    # by 80 bps, which the simulators' noise never does (with the default fees a 4 bps reversal exited it).
    config = process_config(sims, pair, exit_threshold_bps=0)
    for venue in ("vest", "paradex"):
        config[venue]["taker_fee_bps"] = 40
    first = ArbProcess(sims, creds, config, tmp_path)
    first.wait_event("engine_started")
    sims.paradex.faults.delay_next_response_s = 4.0  # paradex executes, its answer is late
    inject(sims, "paradex", 120, 0.8)
    first.wait_event("spread_detected", 5)
    wait_until(lambda: sim_positions(sims, creds) == {"vest": D("0.01"), "paradex": D("-0.01")}, 5, "both legs")
    assert first.finish(signal.SIGKILL) == -signal.SIGKILL
    assert not first.events("entry_executed")  # killed before the result was known
    (intent,) = pair_intents(pair)
    assert intent.state == "pending" and intent.kind == "entry"

    second = ArbProcess(sims, creds, config, tmp_path)
    recovering = second.wait_event("intent_recovering")
    assert recovering["context"]["intent_id"] == intent.id
    assert recovering["context"]["venues_now"] == {"vest": "0.01", "paradex": "-0.01"}
    second.wait_event("engine_started")
    assert not second.events("unhedged_position")  # both legs were there: nothing to close
    assert second.finish(signal.SIGINT) == 0
    assert second.lines[-1]["event"] == "Clean exit, no pending orders"
    assert pair_intents(pair)[0].state == "recovered"
    with new_session() as session:
        position = session.get(ArbPosition, pair)
        assert position.sizes == {"vest": "0.01", "paradex": "-0.01"}
        assert position.direction == "long_vest_short_paradex"
    assert sim_positions(sims, creds) == {"vest": D("0.01"), "paradex": D("-0.01")}


def test_killed_between_the_legs_restart_closes_the_lone_leg_reduce_only(sims, infra, tmp_path):
    creds, pair = new_credentials(sims), f"kill-b-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    first = ArbProcess(sims, creds, process_config(sims, pair, retry_backoff_ms=20_000), tmp_path)
    first.wait_event("engine_started")
    sims.paradex.faults.reject_next_order = True  # the paradex leg waits 20 s before its retry ...
    inject(sims, "paradex", 30, 0.8)
    first.wait_event("leg_retry", 5)
    wait_until(lambda: sim_positions(sims, creds) == {"vest": D("0.01"), "paradex": ZERO}, 5, "vest leg only")
    assert first.finish(signal.SIGKILL) == -signal.SIGKILL  # ... and the process dies in between

    second = ArbProcess(sims, creds, process_config(sims, pair), tmp_path)
    second.wait_event("intent_recovering")
    unhedged = second.wait_event("unhedged_position")
    assert unhedged["level"] == "error" and unhedged["context"]["venue"] == "vest"
    rollback = second.wait_event("leg_rollback")
    assert (rollback["context"]["side"], rollback["context"]["size"]) == ("SELL", "0.01")
    second.wait_event("engine_started")
    assert sim_positions(sims, creds) == {"vest": ZERO, "paradex": ZERO}
    assert second.finish(signal.SIGTERM) == 0
    assert second.lines[-1]["event"] == "Clean exit, no pending orders"
    kinds = [(i.kind, i.state) for i in pair_intents(pair)]
    assert kinds == [("entry", "recovered"), ("rollback", "done")]


def test_a_pair_whose_market_the_venue_does_not_list_stops_the_process_with_exit_2_and_one_line(sims, infra, tmp_path):
    creds, pair = new_credentials(sims), f"lst-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    config = process_config(sims, pair)
    config["pairs"] = [
        {"pair": pair},
        {"pair": f"{pair}-x", "vest_market": "XYZ-PERP", "paradex_market": "XYZ-USD-PERP"},
    ]
    process = ArbProcess(sims, creds, config, tmp_path)
    code = process.proc.wait(60)
    process._reader.join(5)
    assert code == 2
    assert process.raw[-1] == (
        f"arb: config.yaml: pair {pair}-x: vest_market 'XYZ-PERP' is not a market on vest (it lists AAVE-PERP, "
        "BCH-PERP, BNB-PERP, BTC-PERP, COMP-PERP, ETH-PERP, LTC-PERP, MKR-PERP, SOL-PERP, TAO-PERP)"
    )
    assert not process.events("engine_started") and pair_intents(pair) == []


def test_two_pairs_in_one_process_trade_their_own_markets_and_stop_clean(sims, infra, redis_client, tmp_path):
    from core.infra.bus import ARB_PAIRS, arb_status_key
    from core.infra.liveness import read_liveness

    creds, pair = new_credentials(sims), f"two-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    config = process_config(sims, pair, exit_threshold_bps=0)
    config["pairs"] = [
        {"pair": f"{pair}-btc"},
        {"pair": f"{pair}-sol", "vest_market": "SOL-PERP", "paradex_market": "SOL-USD-PERP", "size": "1"}
        | {"max_position": "1"},
    ]
    process = ArbProcess(sims, creds, config, tmp_path)
    wait_until(lambda: len(process.events("engine_started")) == 2, 30, "both pairs started")
    inject(sims, "paradex", 60, 0.8)
    wait_until(lambda: len(process.events("entry_executed")) == 2, 10, "an entry on each pair")
    btc, sol = sim_positions(sims, creds, "BTC"), sim_positions(sims, creds, "SOL")
    assert abs(btc["vest"]) == D("0.01") and btc["paradex"] == -btc["vest"]
    assert abs(sol["vest"]) == D(1) and sol["paradex"] == -sol["vest"]
    assert json.loads(redis_client.get(ARB_PAIRS)) == [f"{pair}-btc", f"{pair}-sol"]
    wait_until(
        lambda: (
            D(json.loads(redis_client.get(arb_status_key(f"{pair}-sol")))["position"]["sizes"]["vest"]) == sol["vest"]
        ),
        5,
        "the SOL pair's published position",
    )
    wait_until(lambda: "arb" in read_liveness(redis_client), 10, "the process's liveness")
    assert read_liveness(redis_client)["arb"]["info"]["pairs"] == f"{pair}-btc running, {pair}-sol running"
    assert process.finish(signal.SIGINT) == 0
    assert process.lines[-1]["event"] == "Clean exit, no pending orders"
    assert {i.pair for i in pair_intents(f"{pair}-btc") + pair_intents(f"{pair}-sol")} == {f"{pair}-btc", f"{pair}-sol"}
