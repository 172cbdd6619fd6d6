"""The `arb:` section of config.yaml and the venue credentials from the environment / .env.

`arb:` holds the settings shared by every pair (venues, scheduling, loops) and either one pair's settings (the
single-pair form) or `pairs:`, a list of pairs, each with its own markets, size, thresholds, limits, kill switch
and risk thresholds (PAIR_KEYS); a pair setting at the top level is then every pair's default.

Invalid settings stop the process before it connects anywhere, with one line
`arb: config.yaml: arb.<key>: <what is expected>` and exit code 2.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.exchanges.perp.credentials import Credentials
from core.exchanges.perp.demo import SimPorts, demo_credentials
from core.infra.config import ConfigError, get_settings
from core.infra.security import register_secret

Bps = Annotated[Decimal, Field(ge=0, le=10_000)]
Positive = Annotated[Decimal, Field(gt=0)]
Port = Annotated[int, Field(ge=1, le=65535)]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
PAIR_KEYS = frozenset(
    {
        "pair",
        "vest_market",
        "paradex_market",
        "size",
        "entry_threshold_bps",
        "exit_threshold_bps",
        "capital_usd",
        "max_position",
        "daily_loss_limit_usd",
        "failed_entry_cooldown_s",
        "slippage_bps",
        "dry_run",
        "risk",
        "carry_exit",
    }
)
MAX_PAIRS = 50


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VenueUrls(Strict):
    rest_url: str | None = None
    ws_url: str | None = None
    taker_fee_bps: Bps = Decimal(2)
    price_tick: Positive = Decimal("0.01")


class RiskConfig(Strict):
    """The risk watch (arb/risk.py): both venues' positions, margin and liquidation prices, read off the
    decision loop. A distance is how far the mark may move against a leg before it is liquidated, in percent
    of the mark; the margin ratio is maintenance margin over equity (1 = liquidation)."""

    poll_interval_s: float = Field(default=1.0, ge=0.05, le=2.0)  # a changed leg is seen within 2 s
    failures_to_pause: int = Field(default=3, ge=1, le=20)  # unanswered reads in a row that pause the pair
    warn_distance_pct: Annotated[Decimal, Field(gt=0, lt=100)] = Decimal(15)  # the admins are notified below
    reduce_distance_pct: Annotated[Decimal, Field(gt=0, lt=100)] = Decimal("7.5")  # both legs reduced below
    warn_margin_ratio: Annotated[Decimal, Field(gt=0, le=1)] = Decimal("0.5")  # notified at or above
    reduce_margin_ratio: Annotated[Decimal, Field(gt=0, le=1)] = Decimal("0.8")  # both legs reduced at or above

    @model_validator(mode="after")
    def ordered(self) -> RiskConfig:
        if self.reduce_distance_pct >= self.warn_distance_pct:
            raise ValueError(
                "reduce_distance_pct must be below warn_distance_pct (the warning comes first, then the reduction)"
            )
        if self.reduce_margin_ratio <= self.warn_margin_ratio:
            raise ValueError(
                "reduce_margin_ratio must be above warn_margin_ratio (the warning comes first, then the reduction)"
            )
        return self


class CarryExitConfig(Strict):
    """The carry exit rule (arb/carry.py), off by default: a held position whose funding costs more, projected
    over `horizon_hours` at the rate it was paid since the position opened, than exiting it now (both legs'
    taker fees at the mid) plus `threshold_usd`, exits both legs together through the ordinary exit."""

    enabled: bool = False
    min_hold_minutes: float = Field(default=60, ge=0, le=10_080)  # the carry is judged after this long held
    horizon_hours: float = Field(default=8, gt=0, le=720)  # the projection window: one funding interval or more
    threshold_usd: Annotated[Decimal, Field(ge=0, le=1_000_000)] = Decimal(0)  # projected cost beyond the fees


class ArbConfig(Strict):
    pair: str = Field(default="BTC", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    vest_market: str = "BTC-PERP"
    paradex_market: str = "BTC-USD-PERP"
    size: Positive = Decimal("0.01")  # base units per leg and per entry
    entry_threshold_bps: Bps = Decimal(8)  # open when the net edge (after fees) reaches this
    exit_threshold_bps: Bps = Decimal(6)  # close when the net cost of closing (gap + fees) falls to this
    capital_usd: Positive = Decimal(10_000)  # max notional per venue
    max_position: Positive = Decimal("0.03")  # max absolute size per venue
    daily_loss_limit_usd: Positive = Decimal(100)
    max_retries: int = Field(default=3, ge=0, le=20)
    retry_backoff_ms: int = Field(default=50, ge=0, le=60_000)
    leg_timeout_s: float = Field(default=2.0, gt=0, le=60)
    failed_entry_cooldown_s: float = Field(default=5.0, ge=0, le=3600)  # no new entry this long after a failed one
    stale_book_ms: int = Field(default=1000, ge=10, le=60_000)
    watchdog_s: float = Field(default=5.0, gt=0, le=300)
    slippage_bps: Bps = Decimal(20)
    status_interval_s: float = Field(default=0.5, gt=0, le=60)
    health_interval_s: float = Field(default=1.0, ge=0.05, le=60)  # backlog flush, hedge retry, warm connections
    dry_run: bool = False
    # CPU scheduling of the engine process. It sleeps on sockets nearly all the time, then must not lose
    # the CPU between a detection and its two orders (a local process woken by the first order would
    # take it). realtime_priority > 0 asks Linux for SCHED_FIFO at that priority (the kernel's RT
    # throttling still leaves 5 % to everything else); 0, or a refusal (no root / CAP_SYS_NICE), falls
    # back to `nice`. `scheduling_applied` in the log says what is in force.
    realtime_priority: int = Field(default=10, ge=0, le=99)
    nice: int = Field(default=-10, ge=-20, le=19)
    paradex_chain_id: str = "PRIVATE_SN_PARACLEAR_SIM"
    vest: VenueUrls = VenueUrls(taker_fee_bps=Decimal(1))
    paradex: VenueUrls = VenueUrls(taker_fee_bps=Decimal(2))
    sim: SimPorts = SimPorts()
    risk: RiskConfig = RiskConfig()
    carry_exit: CarryExitConfig = CarryExitConfig()

    @model_validator(mode="after")
    def coherent(self) -> ArbConfig:
        if self.max_position < self.size:
            raise ValueError("max_position must be at least size")
        if self.exit_threshold_bps > self.entry_threshold_bps:
            raise ValueError(
                "exit_threshold_bps must not be above entry_threshold_bps "
                "(both are net of fees: a round trip between them would be sure to lose)"
            )
        host = self.sim.host
        if self.vest.rest_url is None:
            self.vest.rest_url = f"http://{host}:{self.sim.vest_port}/v2"
        if self.vest.ws_url is None:
            self.vest.ws_url = f"ws://{host}:{self.sim.vest_port}/ws-api"
        if self.paradex.rest_url is None:
            self.paradex.rest_url = f"http://{host}:{self.sim.paradex_port}/v1"
        if self.paradex.ws_url is None:
            self.paradex.ws_url = f"ws://{host}:{self.sim.paradex_port}/v1/ws"
        for venue in (self.vest, self.paradex):
            for url in (venue.rest_url, venue.ws_url):
                parts = urlsplit(url)
                if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
                    raise ValueError(f"not a URL: {url!r}")
                if parts.scheme in ("http", "ws") and parts.hostname not in LOCAL_HOSTS:
                    raise ValueError(f"{url!r}: a non-loopback venue needs https:// or wss:// (TLS)")
        return self

    @property
    def fees_bps(self) -> dict[str, Decimal]:
        return {"vest": self.vest.taker_fee_bps, "paradex": self.paradex.taker_fee_bps}

    @property
    def markets(self) -> dict[str, str]:
        return {"vest": self.vest_market, "paradex": self.paradex_market}

    @property
    def venues_are_local(self) -> bool:
        return all(
            urlsplit(u).hostname in LOCAL_HOSTS
            for u in (self.vest.rest_url, self.vest.ws_url, self.paradex.rest_url, self.paradex.ws_url)
        )


CREDENTIAL_NAMES = ("VEST_API_KEY", "VEST_SIGNING_KEY", "PARADEX_PRIVATE_KEY", "PARADEX_ACCOUNT")


def _describe(error: dict, where: str = "arb") -> str:
    key = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{where}.{key}: is not a known setting"
    message = error["msg"].removeprefix("Value error, ")
    if "input" in error and not isinstance(error["input"], dict):
        message += f", got {error['input']!r}"
    return f"{where}.{key}: {message}" if key else f"{where}: {message}"


def parse_arb_config(raw: dict | None, where: str = "arb") -> ArbConfig:
    """Validate one pair's complete settings; a problem becomes one ConfigError line."""
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"arb: config.yaml: {where}: expected a mapping of settings")
    try:
        return ArbConfig.model_validate(raw or {})
    except ValidationError as exc:
        raise ConfigError(f"arb: config.yaml: {_describe(exc.errors()[0], where)}") from None


def parse_arb_pairs(raw: dict | None) -> list[ArbConfig]:
    """Every pair's settings from the `arb:` mapping (one pair without `pairs:`); a problem becomes one line."""
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError("arb: config.yaml: arb: expected a mapping of settings")
    shared = dict(raw or {})
    entries = shared.pop("pairs", None)
    first = parse_arb_config(shared)  # the shared settings are checked once, named as they are written
    if entries is None:
        return [first]
    if not isinstance(entries, list) or not 0 < len(entries) <= MAX_PAIRS:
        raise ConfigError(f"arb: config.yaml: arb.pairs: expected a list of 1 to {MAX_PAIRS} pairs")
    configs = [_pair_config(shared, entry, f"arb.pairs.{i}") for i, entry in enumerate(entries)]
    for i, cfg in enumerate(configs):
        for other in configs[:i]:
            if cfg.pair == other.pair:
                raise ConfigError(f"arb: config.yaml: arb.pairs.{i}.pair: {cfg.pair!r} is already the name of a pair")
            for venue, market in cfg.markets.items():
                if other.markets[venue] == market:
                    raise ConfigError(
                        f"arb: config.yaml: arb.pairs.{i}.{venue}_market: {market!r} is already traded by pair "
                        f"{other.pair!r} (two pairs on one market would trade each other's position)"
                    )
    return configs


def _pair_config(shared: dict, entry: object, where: str) -> ArbConfig:
    if not isinstance(entry, dict):
        raise ConfigError(f"arb: config.yaml: {where}: expected a mapping of the pair's settings")
    if "pair" not in entry:
        raise ConfigError(f"arb: config.yaml: {where}.pair: is required (the pair's name)")
    not_per_pair = sorted(str(key) for key in entry if key not in PAIR_KEYS)
    if not_per_pair:
        raise ConfigError(
            f"arb: config.yaml: {where}.{not_per_pair[0]}: is not a per-pair setting "
            f"(a pair sets {', '.join(sorted(PAIR_KEYS))})"
        )
    merged = {**shared, **entry}
    for section in ("risk", "carry_exit"):  # a pair's section completes the shared one
        if isinstance(shared.get(section), dict) and isinstance(entry.get(section), dict):
            merged[section] = {**shared[section], **entry[section]}
    return parse_arb_config(merged, where)


def read_environment(env_path: Path | None) -> dict[str, str]:
    """os.environ over the .env file (real environment variables win), empty values dropped."""
    values = {k: v for k, v in dotenv_values(env_path).items() if v} if env_path and env_path.exists() else {}
    values.update({k: v for k, v in os.environ.items() if v})
    return values


def load_credentials(cfg: ArbConfig, env: dict[str, str]) -> Credentials:
    present = [name for name in CREDENTIAL_NAMES if env.get(name)]
    if not present:
        if not cfg.venues_are_local:
            raise ConfigError(
                "arb: .env: VEST_API_KEY: venue credentials are required for non-local venues "
                f"(set {', '.join(CREDENTIAL_NAMES)})"
            )
        return demo_credentials()
    missing = [name for name in CREDENTIAL_NAMES if not env.get(name)]
    if missing:
        raise ConfigError(f"arb: .env: {missing[0]}: is required when {present[0]} is set")
    try:
        int(env["PARADEX_PRIVATE_KEY"], 16)
        int(env["PARADEX_ACCOUNT"], 16)
    except ValueError:
        raise ConfigError("arb: .env: PARADEX_PRIVATE_KEY/PARADEX_ACCOUNT: expected hex numbers (0x...)") from None
    creds = Credentials(
        env["VEST_API_KEY"],
        env["VEST_SIGNING_KEY"],
        env["PARADEX_PRIVATE_KEY"],
        env["PARADEX_ACCOUNT"],
        env.get("PARADEX_ETH_ADDRESS"),
    )
    for secret in (creds.vest_api_key, creds.vest_signing_key, creds.paradex_private_key):
        register_secret(secret)
    return creds


def load() -> tuple[list[ArbConfig], Credentials]:
    settings = get_settings()
    configs = parse_arb_pairs(settings.file.arb)
    return configs, load_credentials(configs[0], read_environment(settings.env_path))
