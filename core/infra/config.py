"""Settings: config.yaml (non-secret, committed) + .env (secrets, git-ignored), loaded once and validated.

A bad or missing value stops the process with one line naming the file, the key and what is expected.
"""

from __future__ import annotations

import ipaddress
import os
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

import yaml
from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

ROOT = Path(__file__).resolve().parents[2]
Port = Annotated[int, Field(ge=1, le=65535)]
TIMEFRAMES = ("1m", "3m", "5m", "15m", "1h", "4h")
# The embedded PostgreSQL: the application's database and the role that owns it (never a superuser).
EMBEDDED_DB_NAME = EMBEDDED_DB_ROLE = "aristobot"


class ConfigError(Exception):
    """One human line: which file, which key, what is expected. The CLI exits with code 2."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebConfig(Section):
    host: str = "127.0.0.1"
    port: Port = 8000
    workers: int = Field(default=2, ge=1, le=16)  # processes: webhook bursts are CPU-bound
    threads: int = Field(default=32, ge=1, le=128)  # per process; each open SSE stream holds one
    session_cookie_secure: bool = False  # true behind HTTPS


class EmbeddedConfig(Section):
    postgres_port: Port = 54329
    redis_port: Port = 63799


class SimConfig(Section):
    host: str = "127.0.0.1"
    port: Port = 8900
    seed: int = 42
    demo_balance_usdt: str = "10000"
    replay: str | None = None  # a 1m candle CSV: the simulator replays it instead of its synthetic market
    replay_speed: float = Field(default=60.0, gt=0, le=3600)


class FlowerConfig(Section):
    port: Port = 5555


class DemoConfig(Section):
    create_user: bool = True
    username: str = Field(default="demo", min_length=3, max_length=64)


def _known_timeframes(value: list[str] | None) -> list[str] | None:
    unknown = [tf for tf in value or [] if tf not in TIMEFRAMES]
    if unknown:
        raise ValueError(f"unknown timeframe(s) {unknown}; expected some of {list(TIMEFRAMES)}")
    return value


class FeedSourceConfig(Section):
    """One heartbeat source: a venue's kline websocket (core.candles.sources reads these)."""

    venue: Literal["sim", "binance", "bitget", "kraken"]
    symbols: list[str] = Field(min_length=1)
    timeframes: list[str] | None = None  # default: the feeds section's
    ws_url: str | None = None  # default: the venue's (the simulator's for sim)
    rest_url: str | None = None

    _timeframes = field_validator("timeframes")(_known_timeframes)


class FeedsConfig(Section):
    # The single-source form (venue + symbols) is used when `sources` is empty.
    venue: str = "sim"
    symbols: list[str] = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    timeframes: list[str] = list(TIMEFRAMES)
    sources: list[FeedSourceConfig] = []  # the first one is the heartbeat that bots default to

    _timeframes = field_validator("timeframes")(_known_timeframes)


class SecurityConfig(Section):
    # Outbound URLs given by users (broker base URL, AI endpoint) may point at private addresses:
    allow_private_urls: bool = False  # all of them (a single-user install on a home network)
    allowed_networks: list[str] = []  # or only these, e.g. ["192.168.1.0/24"]

    @field_validator("allowed_networks")
    @classmethod
    def valid_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network)  # ValueError names the bad one
        return value


class WebhooksConfig(Section):
    """TradingView intake: how old (or early) an alert's own time may be, and the budget of requests
    with an unknown token per sender address."""

    max_alert_age_s: int = Field(default=120, ge=1, le=86_400)
    max_alert_ahead_s: int = Field(default=30, ge=0, le=3600)
    unknown_token_per_minute: int = Field(default=30, ge=1, le=10_000)


class OrdersConfig(Section):
    """How long an order may wait its turn for a venue's request budget before it ends `expired`:
    webhook orders wait up to webhooks.max_alert_age_s, bot orders until their candle closes, and
    manual orders (and cancels) up to manual_max_wait_s."""

    manual_max_wait_s: int = Field(default=60, ge=1, le=3600)


class LimitsConfig(Section):
    """What one installation is sized for (the product brief): refused beyond, with a clear message."""

    max_active_users: int = Field(default=5, ge=1, le=100_000)
    max_running_bots_per_user: int = Field(default=20, ge=1, le=100_000)


class NotificationsConfig(Section):
    """Telling traders: the same condition (dedup key) notifies once per window; outbound delivery
    (Apprise) is capped per user and retried with a doubling backoff."""

    dedup_window_s: int = Field(default=600, ge=0, le=86_400)
    per_user_per_minute: int = Field(default=20, ge=1, le=10_000)
    max_attempts: int = Field(default=4, ge=1, le=20)
    retry_backoff_s: float = Field(default=5.0, ge=0, le=3600)  # doubles on each retry
    send_timeout_s: int = Field(default=10, ge=1, le=120)
    # a delivery whose task was lost is queued again (core/notifications/sweep.py)
    requeue_after_s: int = Field(default=120, ge=10, le=86_400)
    stale_sending_s: int = Field(default=900, ge=60, le=86_400)  # a worker killed mid-send


class BackupsConfig(Section):
    """Daily pg_dump of the application database (core/backups/): where, when, how many are kept."""

    dir: str | None = None  # default: var/backups; relative paths from the root; another disk is better
    daily_at: str = Field(default="03:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # UTC, HH:MM
    keep_daily: int = Field(default=30, ge=1, le=3650)  # the newest backup of each of the last N days
    keep_monthly: int = Field(default=12, ge=0, le=600)  # and the first backup of each of the last N months
    max_age_h: float = Field(default=26, gt=0, le=24 * 365)  # /healthz: degraded beyond this without a good one
    pg_bin_dir: str | None = None  # where pg_dump/pg_restore live, when not on PATH (external server)


class ReconciliationConfig(Section):
    """What reconciliation does about changes made at the venue: a protective exit (stop / target of a
    bot or webhook) cancelled or changed there is placed again while the position needs it
    (`replace_protection`); a balance differing from what our fills imply by more than
    `balance_dust_ratio` of it is told."""

    replace_protection: bool = True
    balance_dust_ratio: Decimal = Field(default=Decimal("0.000001"), ge=0, le=1)


class FileConfig(Section):
    """Shape of config.yaml. Sections added by later modules go here too."""

    web: WebConfig = WebConfig()
    embedded: EmbeddedConfig = EmbeddedConfig()
    sim: SimConfig = SimConfig()
    flower: FlowerConfig = FlowerConfig()
    demo: DemoConfig = DemoConfig()
    feeds: FeedsConfig = FeedsConfig()
    security: SecurityConfig = SecurityConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    orders: OrdersConfig = OrdersConfig()
    limits: LimitsConfig = LimitsConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    backups: BackupsConfig = BackupsConfig()
    reconciliation: ReconciliationConfig = ReconciliationConfig()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    data_dir: str | None = None  # candle CSVs for the benches and tests; relative paths from the root
    # The arbitrage engine validates its own section strictly (arb/config.py) when it starts.
    arb: dict = {}


class Secrets(BaseModel):
    """Shape of the environment / .env. Only these names are read."""

    model_config = ConfigDict(extra="ignore")

    SECRET_KEY: str = Field(min_length=16)
    FERNET_KEYS: str = Field(min_length=44)
    DATABASE_URL: str | None = None
    REDIS_URL: str | None = None
    # External server only: a role that may create and rename databases (backup verify and restore).
    DATABASE_ADMIN_URL: str | None = None
    # The embedded services' credentials, generated into .env at first start (core/processes.py).
    POSTGRES_APP_PASSWORD: str | None = None
    REDIS_PASSWORD: str | None = None
    FLOWER_BASIC_AUTH: str | None = None
    AI_BASE_URL: str | None = None
    AI_API_KEY: str | None = None
    AI_MODEL: str | None = None


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    root: Path
    file: FileConfig
    secrets: Secrets
    config_path: Path
    env_path: Path

    @property
    def var_dir(self) -> Path:
        return Path(os.environ.get("ARISTOBOT_VAR", self.root / "var"))

    @property
    def data_dir(self) -> Path:
        """The candle CSVs the benches and tests read: ARISTOBOT_DATA_DIR, else `data_dir` of config.yaml."""
        configured = os.environ.get("ARISTOBOT_DATA_DIR") or self.file.data_dir
        if not configured:
            raise ConfigError(f"{self.config_path}: data_dir: is required but missing (the folder of candle CSVs)")
        return (self.root / configured).resolve()

    @property
    def embedded_postgres(self) -> bool:
        return not self.secrets.DATABASE_URL

    @property
    def embedded_redis(self) -> bool:
        return not self.secrets.REDIS_URL

    @property
    def database_url(self) -> str:
        """External: DATABASE_URL. Embedded: the application's own role (not a superuser) and database."""
        if self.secrets.DATABASE_URL:
            return _psycopg_url(self.secrets.DATABASE_URL)
        role = EMBEDDED_DB_ROLE + _password_part(self.secrets.POSTGRES_APP_PASSWORD)
        return f"postgresql+psycopg://{role}@127.0.0.1:{self.file.embedded.postgres_port}/{EMBEDDED_DB_NAME}"

    @property
    def redis_url(self) -> str:
        if self.secrets.REDIS_URL:
            return self.secrets.REDIS_URL
        auth = f"{_password_part(self.secrets.REDIS_PASSWORD)}@" if self.secrets.REDIS_PASSWORD else ""
        return f"redis://{auth}127.0.0.1:{self.file.embedded.redis_port}/0"

    @property
    def backup_dir(self) -> Path:
        configured = self.file.backups.dir
        return (self.root / configured).resolve() if configured else self.var_dir / "backups"

    @property
    def sim_url(self) -> str:
        return f"http://{self.file.sim.host}:{self.file.sim.port}"


def _password_part(password: str | None) -> str:
    return f":{quote(password, safe='')}" if password else ""


def _psycopg_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _describe(error: ErrorDetails, *, show_input: bool = True) -> tuple[str, str]:
    key = ".".join(str(part) for part in error["loc"])
    message = error["msg"]
    if error["type"] == "missing":
        message = "is required but missing"
    elif error["type"] == "extra_forbidden":
        message = "is not a known setting"
    elif show_input and "input" in error and not isinstance(error["input"], dict):
        message = f"{message}, got {error['input']!r}"
    return key, message


def _read_yaml(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(data).__name__}")
    return data


def load_settings(config_path: Path | None = None, env_path: Path | None = None) -> Settings:
    root = Path(os.environ.get("ARISTOBOT_HOME", ROOT))
    config_path = Path(config_path) if config_path else Path(os.environ.get("ARISTOBOT_CONFIG", root / "config.yaml"))
    env_path = Path(env_path) if env_path else Path(os.environ.get("ARISTOBOT_ENV_FILE", root / ".env"))
    try:
        file_config = FileConfig.model_validate(_read_yaml(config_path))
    except ValidationError as exc:
        key, message = _describe(exc.errors()[0])
        raise ConfigError(f"{config_path}: {key}: {message}") from None
    # Real environment variables win over .env, as twelve-factor apps expect.
    env = (
        {**{k: v for k, v in dotenv_values(env_path).items() if v}, **os.environ}
        if env_path.exists()
        else dict(os.environ)
    )
    env = {k: v for k, v in env.items() if v != ""}
    try:
        secrets = Secrets.model_validate(env)
    except ValidationError as exc:
        key, message = _describe(exc.errors()[0], show_input=False)  # never echo a secret
        if key in {"SECRET_KEY", "FERNET_KEYS"}:
            message += f" (run `make run` once to generate {env_path.name}, or copy .env.example)"
        raise ConfigError(f"{env_path}: {key}: {message}") from None
    return Settings(root=root, file=file_config, secrets=secrets, config_path=config_path, env_path=env_path)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
