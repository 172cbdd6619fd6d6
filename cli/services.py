"""`aristobot services postgres|redis`: the embedded infrastructure `make run` starts when no external
server is configured."""

from __future__ import annotations

import sys

import click

from core.infra.config import ConfigError, get_settings


@click.group("services")
def services_group() -> None:
    """Embedded infrastructure run by `make run` when no external server is configured."""


def _generated_secret(value: str | None, name: str) -> str:
    if not value:
        raise ConfigError(
            f"{get_settings().env_path}: {name}: is required but missing (run `make run` once to generate it)"
        )
    return value


@services_group.command("postgres")
def services_postgres() -> None:
    from core.infra.embedded_pg import serve_postgres

    settings = get_settings()
    password = _generated_secret(settings.secrets.POSTGRES_APP_PASSWORD, "POSTGRES_APP_PASSWORD")
    sys.exit(serve_postgres(settings.var_dir / "pg", settings.file.embedded.postgres_port, password))


@services_group.command("redis")
def services_redis() -> None:
    from core.infra.embedded_services import serve_redis

    settings = get_settings()
    password = _generated_secret(settings.secrets.REDIS_PASSWORD, "REDIS_PASSWORD")
    sys.exit(serve_redis(settings.var_dir / "redis", settings.file.embedded.redis_port, password))
