"""Telling traders what happened: `notify()` records a notification (deduplicated), pushes it to every
open page of the user (Redis pub/sub, read by the web app's SSE stream) and queues its outbound delivery
(Apprise channels) on the maintenance queue. Nothing here ever raises into the trading code that calls it."""

from core.notifications.center import notify, notify_admins

__all__ = ["notify", "notify_admins"]
