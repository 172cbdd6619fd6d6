"""`aristobot run|sim|arb|feeds`: start everything, or one process."""

from __future__ import annotations

import os
import sys

import click


@click.command("run")
def run_command() -> None:
    """Start everything (embedded Postgres/Redis unless configured, simulator, web, workers...)."""
    from core.processes import run as run_all

    sys.exit(run_all())


@click.command("sim", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def sim_command() -> None:
    """Run the spot exchange simulator, Binance protocol (same as `python -m sim.spot [--port N]`)."""
    exec_module("sim.spot", 2)


def exec_module(module: str, first_arg: int) -> None:
    """Replace this process with `python -m module` and the arguments from sys.argv[first_arg:] (process
    packages are started, not imported: the command line stays a thin launcher)."""
    os.execv(sys.executable, [sys.executable, "-m", module, *sys.argv[first_arg:]])


@click.command("arb", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def arb_command() -> None:
    """Run the Vest/Paradex arbitrage engine (same as the Procfile `arb` process)."""
    exec_module("arb", 2)


@click.command("feeds", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def feeds_command() -> None:
    """Run the heartbeat (live candles) process."""
    exec_module("feeds", 2)
