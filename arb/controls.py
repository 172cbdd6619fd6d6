"""The admins' controls of the arbitrage engine: its own task takes the commands the web queued on Redis
(core/arb_commands.py) every `health_interval_s` and answers each with an event and the result on its
`arb_operator_actions` row. Mixed into ArbEngine (arb/engine.py), whose state it reads and sets.

- pause / resume: no new entries while paused (exits, hedge repair and the risk watch go on); kept across restarts;
- dry_run_on / dry_run_off: spreads detected, nothing sent (the risk watch still acts);
- reset_kill_switch: the day's loss limit counts again from now; refused while the legs do not match;
- flatten: the pair paused, then every open leg closed reduce-only in one intent (both legs together).
A malformed command is logged and skipped; a command for another pair, or older than EXPIRES_AFTER_S, is refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from arb.legs import LegPlan
from arb.pair import VENUES, ZERO, as_text
from core.arb_commands import EXPIRES_AFTER_S, Command

IDLE_WAIT_S = 30.0  # how long a flatten waits for the trade in flight to end


class OperatorControls:
    """ArbEngine's operator controls."""

    take_commands: Callable[[], list[str]] | None
    _commands_unreadable = False  # the last look at the list failed

    async def _controls(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.health_interval_s)
            await self.check_commands()

    async def check_commands(self) -> None:
        if self.take_commands is None:
            return
        try:
            raws = await asyncio.to_thread(self.take_commands)
        except Exception as exc:  # Redis away: the commands wait in the list; trading goes on
            if not self._commands_unreadable:  # said once, not at every look
                self.emit("operator_commands_unreadable", level=logging.WARNING, error=repr(exc)[:200])
            self._commands_unreadable = True
            return
        self._commands_unreadable = False
        for raw in raws:
            try:
                command = Command.from_json(raw)
            except ValueError as exc:
                self.emit("operator_command_malformed", level=logging.WARNING, error=str(exc)[:200], raw=raw[:200])
                continue
            result = await self.apply_command(command)
            if self.store is not None and command.action_id:
                await self.db(self.store.record_action, command.action_id, result)

    async def apply_command(self, command: Command) -> str:
        """Act on one command; its result as the row keeps it ("done: …" or "refused: …")."""
        who = {"action": command.action, "by": command.by_username, "action_id": command.action_id}
        refusal = self._refusal(command)
        if refusal is not None:
            self.emit("operator_command_refused", level=logging.WARNING, reason=refusal, **who)
            return f"refused: {refusal}"
        if command.action == "pause":
            await self._pause(command.by_username)
            self.emit("operator_paused", **who)
            return "done: entries paused"
        if command.action == "resume":
            self.paused_by = None
            await self.save_position()
            self.emit("operator_resumed", **who)
            return "done: entries resumed"
        if command.action in ("dry_run_on", "dry_run_off"):
            self.dry_run = command.action == "dry_run_on"
            self.emit("dry_run_changed", dry_run=self.dry_run, **who)
            return f"done: dry run {'on' if self.dry_run else 'off'}"
        if command.action == "reset_kill_switch":
            return await self._reset_kill_switch(who)
        return await self._flatten(command, who)

    def _refusal(self, command: Command) -> str | None:
        if command.pair != self.cfg.pair:
            return f"the engine has no pair {command.pair} (the command reached {self.cfg.pair})"
        if command.age_s() > EXPIRES_AFTER_S:
            return f"the command waited {command.age_s():.0f} s (more than {EXPIRES_AFTER_S:.0f} s): ask again"
        if self.stopping:
            return "the engine is stopping"
        if command.action == "reset_kill_switch":
            if self.unhedged or self.net != 0:
                return f"the position is unhedged ({', '.join(f'{k} {v}' for k, v in as_text(self.sizes).items())})"
            if self.halted_reason is None:
                return "the kill switch is not on"
        return None

    async def _pause(self, username: str) -> None:
        self.paused_by = username
        await self.save_position()

    async def _reset_kill_switch(self, who: dict) -> str:
        was = self.halted_reason
        self.halted_reason = None
        # the day's loss counts again from here, or the next health check would trip the switch again
        self.loss_offset = self.realized_pnl + self.unrealized_pnl()
        await self.save_position()
        self.emit("kill_switch_reset", reason=was, **who)
        return f"done: kill switch ({was}) reset"

    async def _flatten(self, command: Command, who: dict) -> str:
        await self._pause(command.by_username)
        deadline = time.monotonic() + IDLE_WAIT_S
        while self.busy and time.monotonic() < deadline:  # the trade in flight ends first
            await asyncio.sleep(0.05)
        if self.busy:
            self.emit("operator_command_refused", level=logging.WARNING, reason="a trade is still in flight", **who)
            return "refused: a trade is still in flight (the pair stays paused)"
        if self.flat:
            self.emit("flatten_requested", sizes=as_text(self.sizes), **who)
            return "done: already flat; paused"
        self.emit("flatten_requested", sizes=as_text(self.sizes), **who)
        plans = [
            LegPlan(v, self.cfg.markets[v], "SELL" if self.sizes[v] > 0 else "BUY", abs(self.sizes[v]), True)
            for v in VENUES
            if self.sizes[v] != ZERO
        ]
        results: list = []

        async def close_all() -> None:
            results.append(await self.run_intent("flatten", self.direction or "unmatched", plans, None))

        await self.exclusive(close_all())
        done = results and results[0] is not None and all(r.complete for r in results[0])
        if done and self.flat:
            return "done: both legs closed; paused"
        return f"failed: the close did not complete ({', '.join(f'{k} {v}' for k, v in as_text(self.sizes).items())})"
