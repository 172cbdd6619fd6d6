"""The admins' commands to the arbitrage engine: the web records who asked (`arb_operator_actions`) and queues
the command on one Redis list (`bus.ARB_COMMANDS`); the engine takes them (arb/controls.py), answers each with
an event and writes its result on the same row. The web never talks to the engine directly."""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.infra.bus import ARB_COMMANDS
from core.models.arb import ArbOperatorAction

ACTIONS = {
    "pause": "Pause the pair (no new entries; exits and risk work go on)",
    "resume": "Resume the pair",
    "dry_run_on": "Dry run on (spreads are detected, nothing is sent)",
    "dry_run_off": "Dry run off (trade for real)",
    "reset_kill_switch": "Reset the kill switch (the day's loss limit)",
    "flatten": "Flatten the pair (both legs closed together), then pause",
}
EXPIRES_AFTER_S = 60.0  # a command older than this when the engine takes it is refused, never acted on late
PAIR = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
TAKE_AT_MOST = 20  # commands taken per look at the list
QUEUED = "queued"


@dataclass(frozen=True)
class Command:
    action: str
    pair: str
    by_user_id: int
    by_username: str
    requested_at: float  # epoch seconds
    action_id: int  # the arb_operator_actions row the engine answers on

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {str(self.action)[:40]!r}")
        if not isinstance(self.pair, str) or not PAIR.match(self.pair):
            raise ValueError("pair: expected 1-64 letters, digits or _.:-")
        for name in ("by_user_id", "action_id"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name}: expected a non-negative integer")
        if not isinstance(self.by_username, str) or not 0 < len(self.by_username) <= 64:
            raise ValueError("by_username: expected 1-64 characters")
        if not isinstance(self.requested_at, (int, float)) or isinstance(self.requested_at, bool):
            raise ValueError("requested_at: expected epoch seconds")

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Command:
        """The command, or ValueError saying what is wrong with it."""
        try:
            data: Any = json.loads(raw)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        names = {"action", "pair", "by_user_id", "by_username", "requested_at", "action_id"}
        if set(data) != names:
            raise ValueError(f"expected the fields {', '.join(sorted(names))}")
        return cls(**data)

    def age_s(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.requested_at


def request(session: Session, client: redis.Redis, action: str, pair: str, user_id: int, username: str) -> int:
    """Record the action under its admin, then queue the command; returns the row's id. A bad action or pair is
    a ValueError and nothing is written. If Redis refuses, the row says so and RedisError goes to the caller."""
    Command(action, pair, user_id, username, time.time(), 0)  # validates before anything is written
    row = ArbOperatorAction(pair=pair, action=action, user_id=user_id, username=username, result=QUEUED)
    session.add(row)
    session.commit()
    command = Command(action, pair, user_id, username, row.at.timestamp(), row.id)
    try:
        client.rpush(ARB_COMMANDS, command.to_json())
    except redis.RedisError as exc:
        row.result = f"not queued: Redis unreachable ({str(exc)[:100]})"
        session.commit()
        raise
    return row.id


def take(client: redis.Redis) -> list[str]:
    """The commands waiting, oldest first (removed from the list)."""
    taken = client.lpop(ARB_COMMANDS, TAKE_AT_MOST)
    if not isinstance(taken, list):
        return []
    return [str(raw, "utf-8", "replace") if isinstance(raw, bytes) else str(raw) for raw in taken]


def record_result(session: Session, action_id: int, result: str) -> None:
    session.execute(update(ArbOperatorAction).where(ArbOperatorAction.id == action_id).values(result=result[:500]))


def recent_actions(session: Session, pair: str | None, limit: int = 20) -> list[ArbOperatorAction]:
    query = select(ArbOperatorAction).order_by(ArbOperatorAction.id.desc()).limit(limit)
    if pair:
        query = query.where(ArbOperatorAction.pair == pair)
    return list(session.scalars(query))


def last_dry_run_choice(session: Session, pair: str) -> bool | None:
    """The dry run the last answered dry_run_on/off of the pair set (True: on), or None if none was ever done: the
    engine restores it at start-up, so an admin's switch outlives a restart."""
    action = session.scalar(
        select(ArbOperatorAction.action)
        .where(
            ArbOperatorAction.pair == pair,
            ArbOperatorAction.action.in_(("dry_run_on", "dry_run_off")),
            ArbOperatorAction.result.startswith("done"),
        )
        .order_by(ArbOperatorAction.id.desc())
        .limit(1)
    )
    return None if action is None else action == "dry_run_on"
