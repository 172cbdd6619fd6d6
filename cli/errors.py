"""How a command reports a failure the operator can fix."""

from __future__ import annotations

import sys

import click


def fail(message: str) -> None:
    """One line on stderr, exit code 1."""
    click.echo(f"aristobot: {message}", err=True)
    sys.exit(1)
