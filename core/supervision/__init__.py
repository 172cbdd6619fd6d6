"""Supervision of the platform's processes: the supervisord configuration generated from the Procfile
(config), the event listener that records every exit and restart (listener, record), systemd units (systemd)."""
