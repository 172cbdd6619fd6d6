"""The arbitrage engine's events in sentences, for the Arbitrage page's event log and the admins'
notifications: one sentence per event the engine emits (arb/), its context filled in."""

from __future__ import annotations

from typing import Any

SENTENCES = {
    "engine_started": "Engine started ({mode}) on {markets}: enters above {entry_threshold_bps} bps, exits below "
    "{exit_threshold_bps} bps, {size} per leg.",
    "stopping": "Stopping ({reason}).",
    "waiting_for_inflight_legs": "Waiting up to {timeout} s for the legs in flight.",
    "loop_failed": "The {task} loop failed: {error}.",
    "book_not_ready": "Waiting for the first {venue} order book.",
    "book_stale": "The {venue} order book is stale ({age_ms} ms old); entries wait for a fresh one.",
    "book_fresh": "The {venue} order book is fresh again.",
    "book_watchdog_restart": "The {venue} feed was silent for {silent_s} s and was reconnected.",
    "spread_detected": "A spread above the entry threshold of {entry_threshold_bps} bps was seen{dry_note}.",
    "entry_executed": "Entered {direction} at a spread of {spread_bps} bps (intent #{intent_id}), both legs "
    "filled; realised P&L {realized_pnl}.",
    "exit_executed": "Exited {direction} at a spread of {spread_bps} bps (intent #{intent_id}); realised P&L "
    "{realized_pnl}.",
    "rollback_executed": "Rolled back (intent #{intent_id}): the legs match again ({sizes}).",
    "entry_failed": "The entry of intent #{intent_id} ({direction}) failed; the hedge is being checked.",
    "exit_failed": "The exit of intent #{intent_id} ({direction}) failed; the hedge is being checked.",
    "rollback_failed": "The rollback of intent #{intent_id} failed; it is retried every few seconds.",
    "intent_write_failed": "The {kind} intent ({direction}) could not be recorded in the database: {error}.",
    "intent_recovering": "Recovering intent #{intent_id} ({kind}, left {state}).",
    "leg_retry": "Retrying the {side} {size} leg on {venue} (attempt {attempt}, intent #{intent_id}): {reason}.",
    "leg_unknown": "The {side} {size} leg on {venue} has no answer ({reason}); it is being looked up.",
    "leg_resolved": "The {side} leg on {venue} was found {filled}: position {position_before} → {position_now}.",
    "leg_rollback": "Rolling back on {venue}: {side} {size} (intent #{intent_id}).",
    "unhedged_position": "Unhedged: {venue} is {net} off after intent #{intent_id}; {action}.",
    "unhedged_position_remains": "Still unhedged on {venue} by {net}: {action}.",
    "hedge_restored": "Hedge restored: {sizes}.",
    "position_query_failed": "The venues' positions could not be read: {error}.",
    "position_reconciled": "Our positions ({ours}) differed from the venues' ({venues}); the venues' are used.",
    "position_restored": "Position restored from the database: {sizes}; realised P&L {realized_pnl}.",
    "kill_switch": "Kill switch: {reason_text}; no new entries.",
    "kill_switch_cleared": "Entries may resume: {reason_text}.",
    "closing_position": "Closing the position: {reason_text}.",
    "trading_halted": "The administrator halted trading: no new entries.",
    "trading_resumed": "The administrator resumed trading.",
    "venue_unhealthy": "{venue} is not answering: {error}.",
    "order_cancelled": "Cancelled the open order {order_id} on {venue}.",
    "open_orders_unknown": "The open orders on {venue} could not be listed: {error}.",
    "database_unreachable": "The database is unreachable; retrying in {retry_in_s} s.",
    "leg_mismatch": "The legs no longer match: {venue} is {found} at the venue where we had {expected} (a "
    "liquidation, an auto-deleveraging or a trade made there); {action}.",
    "risk_warning": "Risk on {venue}: {measure} {value} is past the warning threshold of {threshold}.",
    "risk_reduce": "Risk on {venue}: {measure} {value} is past the reduce threshold of {threshold}; both legs "
    "are reduced together and entries pause.",
    "funding_booked": "Funding on {venue}: {amount} (this leg {leg_total} since the engine started), counted "
    "in the P&L and in intent #{intent_id}.",
    "carry_exit": "Carry exit{dry_note}: {direction} paid {per_hour} of funding an hour since it opened, "
    "{projected} over the next {horizon_hours} h, more than the {exit_fees} of fees to exit (plus "
    "{threshold_usd}); both legs exit together.",
    "dry_run_restored": "Dry run {dry_run_text}, as an admin last set it (kept across restarts).",
    "reduce_executed": "Reduced both legs (intent #{intent_id}): {sizes}.",
    "reduce_failed": "The reduction of intent #{intent_id} failed; the hedge is being checked.",
    "operator_paused": "{by} paused the pair: no new entries (exits and risk work go on).",
    "operator_resumed": "{by} resumed the pair: entries allowed again.",
    "dry_run_changed": "{by} turned dry run {dry_run_text}.",
    "kill_switch_reset": "{by} reset the kill switch ({reason_text}); the day's loss counts again from now.",
    "flatten_requested": "{by} asked to flatten the pair ({sizes}): paused, both legs closing together.",
    "flatten_executed": "Flattened (intent #{intent_id}): {sizes}; the pair stays paused.",
    "flatten_failed": "The flatten of intent #{intent_id} did not complete; the hedge is being checked.",
    "operator_command_refused": "{by}'s {action_text} was refused: {reason}.",
    "operator_command_malformed": "A malformed command was skipped: {error}.",
    "operator_commands_unreadable": "The admins' commands could not be read: {error}.",
}

REASONS = {
    "daily_loss_limit": "the day's loss reached its limit",
    "new trading day": "a new trading day began",
    "signal": "a stop signal",
}


class _Filled(dict):
    """Context for a sentence: a value the event did not carry reads as a dash, never a KeyError."""

    def __missing__(self, key: str) -> str:
        return "—"


def describe(event: str, context: dict[str, Any]) -> str:
    """The event as a sentence; an event without one reads as its words and its details."""
    template = SENTENCES.get(event)
    if template is None:
        details = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in context.items() if k not in _NOT_DETAILS)
        return event.replace("_", " ").capitalize() + (f": {details}." if details else ".")
    return template.format_map(_Filled({k: _text(v) for k, v in context.items()} | _derived(context)))


_NOT_DETAILS = frozenset({"time", "event", "level", "pair"})


def _derived(context: dict[str, Any]) -> dict[str, str]:
    reason = context.get("reason")
    reason_text = REASONS.get(str(reason), str(reason).replace("_", " ").replace(":", ": ")) if reason else "—"
    if reason == "daily_loss_limit" and "loss" in context:
        reason_text = f"the day's loss {context['loss']} reached the limit of {context.get('limit', '—')}"
    return {
        "direction": str(context.get("direction") or "—").replace("_", " "),  # long_vest_short_paradex
        "mode": "dry run" if context.get("dry_run") else "live",
        "dry_note": " (dry run: nothing sent)" if context.get("dry_run") else "",
        "reason_text": reason_text,
        "dry_run_text": "on (nothing is sent)" if context.get("dry_run") else "off (trading for real)",
        "action_text": str(context.get("action") or "command").replace("_", " "),
    }


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return "—" if value is None else str(value)
