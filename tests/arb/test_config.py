"""`arb:` settings and credentials: defaults work, each bad value is refused with one clear line."""

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from arb.config import CREDENTIAL_NAMES, load_credentials, parse_arb_config, parse_arb_pairs
from core.exchanges.perp.credentials import Credentials
from core.exchanges.perp.demo import demo_credentials
from core.infra.config import ConfigError
from tests.conftest import ROOT, process_env


def test_defaults_point_at_the_local_simulators_and_are_coherent():
    cfg = parse_arb_config({})
    assert cfg.vest.rest_url == "http://127.0.0.1:8901/v2" and cfg.paradex.ws_url == "ws://127.0.0.1:8902/v1/ws"
    assert cfg.venues_are_local and cfg.size == Decimal("0.01") and cfg.markets["paradex"] == "BTC-USD-PERP"
    assert cfg.fees_bps == {"vest": Decimal(1), "paradex": Decimal(2)}


@pytest.mark.parametrize(
    "raw,expected",
    [
        ({"size": "-1"}, "arb: config.yaml: arb.size: Input should be greater than 0"),
        ({"size": "lots"}, "arb: config.yaml: arb.size: Input should be a valid decimal"),
        (
            {"entry_threshold_bps": -3},
            "arb: config.yaml: arb.entry_threshold_bps: Input should be greater than or equal to 0",
        ),
        ({"sizes": 1}, "arb: config.yaml: arb.sizes: is not a known setting"),
        ({"max_retries": 99}, "arb: config.yaml: arb.max_retries: Input should be less than or equal to 20"),
        ({"dry_run": "maybe"}, "arb: config.yaml: arb.dry_run: Input should be a valid boolean"),
        ({"max_position": "0.001"}, "arb: config.yaml: arb: max_position must be at least size"),
        (
            {"exit_threshold_bps": 20, "entry_threshold_bps": 5},
            "arb: config.yaml: arb: exit_threshold_bps must not be above entry_threshold_bps",
        ),
        (
            {"exit_threshold_bps": "8.01", "entry_threshold_bps": 8},
            "arb: config.yaml: arb: exit_threshold_bps must not be above entry_threshold_bps",
        ),
        (
            {"vest": {"rest_url": "http://vest.example.com/v2"}},
            "arb: config.yaml: arb: 'http://vest.example.com/v2': a non-loopback venue needs https:// or wss://",
        ),
        (
            {"paradex": {"ws_url": "ws://10.0.0.5:8902/v1/ws"}},
            "arb: config.yaml: arb: 'ws://10.0.0.5:8902/v1/ws': a non-loopback venue needs https:// or wss://",
        ),
        ({"vest": {"rest_url": "not a url"}}, "arb: config.yaml: arb: not a URL: 'not a url'"),
        (
            {"sim": {"vest_port": 70000}},
            "arb: config.yaml: arb.sim.vest_port: Input should be less than or equal to 65535",
        ),
        ({"pair": "has space"}, "arb: config.yaml: arb.pair: String should match pattern"),
        (
            {"risk": {"warn_distance_pct": 5, "reduce_distance_pct": 10}},
            "arb: config.yaml: arb.risk: reduce_distance_pct must be below warn_distance_pct",
        ),
        (
            {"risk": {"warn_margin_ratio": "0.9", "reduce_margin_ratio": "0.6"}},
            "arb: config.yaml: arb.risk: reduce_margin_ratio must be above warn_margin_ratio",
        ),
        ({"risk": {"poll_interval_s": 5}}, "arb: config.yaml: arb.risk.poll_interval_s: Input should be less than"),
        ({"risk": {"warn_distance_pct": 150}}, "arb: config.yaml: arb.risk.warn_distance_pct: Input should be less"),
        (
            {"risk": {"reduce_margin_ratio": 0}},
            "arb: config.yaml: arb.risk.reduce_margin_ratio: Input should be greater",
        ),
        ({"risk": {"failures_to_pause": 0}}, "arb: config.yaml: arb.risk.failures_to_pause: Input should be greater"),
        ({"risk": {"warn_at": 1}}, "arb: config.yaml: arb.risk.warn_at: is not a known setting"),
    ],
)
def test_bad_values_are_refused_with_one_line_naming_the_key(raw, expected):
    with pytest.raises(ConfigError) as caught:
        parse_arb_config(raw)
    message = str(caught.value)
    assert message.startswith(expected) and "\n" not in message


def test_a_non_mapping_section_is_refused():
    with pytest.raises(ConfigError, match=r"^arb: config.yaml: arb: expected a mapping"):
        parse_arb_config(["size", 1])  # type: ignore[arg-type]


def test_no_credentials_and_local_venues_means_the_demo_accounts():
    creds = load_credentials(parse_arb_config({}), {})
    assert creds.demo and creds == demo_credentials()


def test_no_credentials_for_remote_venues_is_refused():
    cfg = parse_arb_config(
        {
            "vest": {
                "rest_url": "https://server-prod.hz.vestmarkets.com/v2",
                "ws_url": "wss://ws-prod.hz.vestmarkets.com/ws-api",
            }
        }
    )
    with pytest.raises(ConfigError, match=r"^arb: .env: VEST_API_KEY: venue credentials are required"):
        load_credentials(cfg, {})


def test_partial_credentials_name_the_missing_one():
    env = {"VEST_API_KEY": "k" * 20, "VEST_SIGNING_KEY": "0x" + "11" * 32}
    with pytest.raises(ConfigError, match=r"^arb: .env: PARADEX_PRIVATE_KEY: is required when VEST_API_KEY is set"):
        load_credentials(parse_arb_config({}), env)
    env |= {"PARADEX_PRIVATE_KEY": "zz-not-hex", "PARADEX_ACCOUNT": "0x1"}
    with pytest.raises(ConfigError, match="expected hex numbers") as caught:
        load_credentials(parse_arb_config({}), env)
    assert "zz-not-hex" not in str(caught.value)


def test_credentials_repr_hides_every_secret():
    creds = Credentials("vest-api-key-123456", "0x" + "ab" * 32, "0x" + "cd" * 31, "0x1234")
    text = repr(creds) + str(creds)
    assert "vest-api-key-123456" not in text and "ab" * 32 not in text and "cd" * 31 not in text


def test_all_credentials_from_the_environment_are_used():
    env = {
        name: value
        for name, value in zip(CREDENTIAL_NAMES, ["key-abcdef", "0x" + "11" * 32, "0x5", "0x99"], strict=True)
    }
    creds = load_credentials(parse_arb_config({}), env)
    assert not creds.demo and creds.vest_api_key == "key-abcdef" and creds.paradex_account == "0x99"


@pytest.mark.slow  # starts the arb process for each bad config
def test_the_process_refuses_a_bad_config_with_exit_code_2_and_one_line(tmp_path: Path):
    (tmp_path / "config.yaml").write_text("arb:\n  size: -5\n")
    result = subprocess.run(
        [sys.executable, "-m", "arb"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=process_env(ARISTOBOT_CONFIG=str(tmp_path / "config.yaml")),
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["arb: config.yaml: arb.size: Input should be greater than 0, got -5"]


def test_the_documented_example_section_is_valid():
    import yaml

    raw = yaml.safe_load((ROOT / "docs/arb-config.example.yaml").read_text())["arb"]
    cfg = parse_arb_config(raw)
    assert cfg.max_position == Decimal("0.03") and cfg.sim.paradex_port == 8902 and not cfg.dry_run


def test_the_single_pair_form_is_a_list_of_one_pair():
    (cfg,) = parse_arb_pairs({"pair": "BTC", "size": "0.02", "max_position": "0.04"})
    assert cfg.pair == "BTC" and cfg.size == Decimal("0.02") and cfg.markets["vest"] == "BTC-PERP"


def test_pairs_take_their_own_settings_over_the_shared_ones():
    raw = {
        "daily_loss_limit_usd": 50,
        "risk": {"warn_distance_pct": 20, "reduce_distance_pct": 10},
        "vest": {"taker_fee_bps": "1"},
        "carry_exit": {"horizon_hours": 4},
        "pairs": [
            {"pair": "BTC"},
            {
                "pair": "ETH",
                "vest_market": "ETH-PERP",
                "paradex_market": "ETH-USD-PERP",
                "size": "0.1",
                "max_position": "0.3",
                "entry_threshold_bps": 12,
                "daily_loss_limit_usd": 20,
                "risk": {"reduce_distance_pct": 5},
                "carry_exit": {"enabled": True},
                "dry_run": True,
            },
        ],
    }
    btc, eth = parse_arb_pairs(raw)
    assert (btc.pair, btc.markets, btc.daily_loss_limit_usd, btc.dry_run) == (
        "BTC",
        {"vest": "BTC-PERP", "paradex": "BTC-USD-PERP"},
        Decimal(50),
        False,
    )
    assert (eth.size, eth.entry_threshold_bps, eth.daily_loss_limit_usd, eth.dry_run) == (
        Decimal("0.1"),
        Decimal(12),
        Decimal(20),
        True,
    )
    assert (eth.risk.warn_distance_pct, eth.risk.reduce_distance_pct) == (Decimal(20), Decimal(5))
    assert btc.risk.reduce_distance_pct == Decimal(10) and eth.vest.taker_fee_bps == Decimal(1)
    assert (btc.carry_exit.enabled, eth.carry_exit.enabled, eth.carry_exit.horizon_hours) == (False, True, 4)


ETH = {"pair": "ETH", "vest_market": "ETH-PERP", "paradex_market": "ETH-USD-PERP"}


@pytest.mark.parametrize(
    "raw,expected",
    [
        ({"pairs": []}, "arb: config.yaml: arb.pairs: expected a list of 1 to 50 pairs"),
        ({"pairs": {"pair": "BTC"}}, "arb: config.yaml: arb.pairs: expected a list of 1 to 50 pairs"),
        ({"pairs": ["BTC"]}, "arb: config.yaml: arb.pairs.0: expected a mapping of the pair's settings"),
        ({"pairs": [{"size": "0.01"}]}, "arb: config.yaml: arb.pairs.0.pair: is required"),
        (
            {"pairs": [{"pair": "BTC"}, {**ETH, "vest": {"taker_fee_bps": 0}}]},
            "arb: config.yaml: arb.pairs.1.vest: is not a per-pair setting",
        ),
        (
            {"pairs": [{"pair": "BTC"}, {**ETH, "size": "-1"}]},
            "arb: config.yaml: arb.pairs.1.size: Input should be greater than 0",
        ),
        (
            {"pairs": [{"pair": "BTC"}, {**ETH, "exit_threshold_bps": 9, "entry_threshold_bps": 8}]},
            "arb: config.yaml: arb.pairs.1: exit_threshold_bps must not be above entry_threshold_bps",
        ),
        (
            {"pairs": [{"pair": "BTC"}, {**ETH, "pair": "BTC"}]},
            "arb: config.yaml: arb.pairs.1.pair: 'BTC' is already the name of a pair",
        ),
        (
            {"pairs": [{"pair": "BTC"}, {**ETH, "paradex_market": "BTC-USD-PERP"}]},
            "arb: config.yaml: arb.pairs.1.paradex_market: 'BTC-USD-PERP' is already traded by pair 'BTC'",
        ),
        (
            {"pairs": [ETH, {"pair": "ETH2", "vest_market": "ETH-PERP", "paradex_market": "SOL-USD-PERP"}]},
            "arb: config.yaml: arb.pairs.1.vest_market: 'ETH-PERP' is already traded by pair 'ETH'",
        ),
        (
            {"paradex": {"rest_url": "http://paradex.example.com/v1"}, "pairs": [{"pair": "BTC"}]},
            "arb: config.yaml: arb: 'http://paradex.example.com/v1': a non-loopback venue needs https://",
        ),
        ({"pairs": [{"pair": "BTC"}] * 51}, "arb: config.yaml: arb.pairs: expected a list of 1 to 50 pairs"),
    ],
)
def test_bad_pairs_are_refused_with_one_line_naming_the_pair(raw, expected):
    with pytest.raises(ConfigError) as caught:
        parse_arb_pairs(raw)
    message = str(caught.value)
    assert message.startswith(expected) and "\n" not in message
