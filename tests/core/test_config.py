"""Bad config gets one clear line naming file, key and expectation; the CLI exits with code 2."""

import subprocess
import sys

import pytest

from core.infra.config import ConfigError, load_settings
from tests.support import remember_secret

GOOD_ENV = "SECRET_KEY=a-long-enough-secret-key\nFERNET_KEYS=" + "x" * 44 + "\n"


def write(tmp_path, yaml_text: str, env_text: str = GOOD_ENV):
    (tmp_path / "config.yaml").write_text(yaml_text)
    (tmp_path / ".env").write_text(env_text)
    return tmp_path / "config.yaml", tmp_path / ".env"


@pytest.fixture()
def clean_env(monkeypatch):
    for name in ("SECRET_KEY", "FERNET_KEYS", "DATABASE_URL", "REDIS_URL", "POSTGRES_APP_PASSWORD", "REDIS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_and_embedded_urls(tmp_path, clean_env):
    settings = load_settings(*write(tmp_path, "web:\n  port: 8123\n"))
    assert settings.file.web.port == 8123
    assert settings.embedded_postgres and settings.embedded_redis
    assert settings.database_url.endswith(":54329/aristobot")


def test_external_urls_from_env_file(tmp_path, clean_env):
    env = GOOD_ENV + "DATABASE_URL=postgresql://u:p@db:5432/x\nREDIS_URL=redis://r:6379/1\n"
    settings = load_settings(*write(tmp_path, "", env))
    assert settings.database_url == "postgresql+psycopg://u:p@db:5432/x"
    assert settings.redis_url == "redis://r:6379/1"
    assert not settings.embedded_postgres and not settings.embedded_redis


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("web:\n  port: abc\n", "web.port: Input should be a valid integer"),
        ("web:\n  port: 70000\n", "web.port: Input should be less than or equal to 65535"),
        ("web:\n  prot: 80\n", "web.prot: is not a known setting"),
        ("feeds:\n  timeframes: [1m, 2m]\n", "feeds.timeframes: Value error, unknown timeframe(s) ['2m']"),
        ("web: [unclosed\n", "is not valid YAML"),
        ("- just\n- a list\n", "expected a mapping of sections"),
    ],
)
def test_bad_config_yaml(tmp_path, clean_env, yaml_text, expected):
    with pytest.raises(ConfigError) as error:
        load_settings(*write(tmp_path, yaml_text))
    message = str(error.value)
    assert "config.yaml" in message and expected in message
    assert "\n" not in message


def test_missing_secret_key_names_the_key_and_the_fix(tmp_path, clean_env):
    with pytest.raises(ConfigError) as error:
        load_settings(*write(tmp_path, "", "FERNET_KEYS=" + "x" * 44 + "\n"))
    assert ".env: SECRET_KEY: is required but missing (run `make run` once" in str(error.value)


def test_short_secret_is_not_echoed(tmp_path, clean_env):
    secret = remember_secret("tiny-secret")
    with pytest.raises(ConfigError) as error:
        load_settings(*write(tmp_path, "", f"SECRET_KEY={secret}\nFERNET_KEYS=" + "x" * 44 + "\n"))
    assert "SECRET_KEY" in str(error.value) and secret not in str(error.value)


def test_cli_exits_2_with_one_line(tmp_path):
    config, env = write(tmp_path, "web:\n  port: nope\n")
    result = subprocess.run(
        [sys.executable, "-m", "cli", "user", "list"],
        capture_output=True,
        text=True,
        env={"ARISTOBOT_CONFIG": str(config), "ARISTOBOT_ENV_FILE": str(env), "PATH": "/usr/bin"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"aristobot: {config}: web.port: Input should be a valid integer, unable to parse string as an integer, "
        "got 'nope'"
    ]


def test_embedded_urls_carry_the_generated_passwords_and_the_app_role(tmp_path, clean_env):
    env = GOOD_ENV + "POSTGRES_APP_PASSWORD=pg-pass/+x\nREDIS_PASSWORD=redis-pass\n"
    settings = load_settings(*write(tmp_path, "", env))
    assert settings.database_url == "postgresql+psycopg://aristobot:pg-pass%2F%2Bx@127.0.0.1:54329/aristobot"
    assert settings.redis_url == "redis://:redis-pass@127.0.0.1:63799/0"
