"""Bots: a pinned strategy version run live on every candle close (see runner.py for one tick)."""
